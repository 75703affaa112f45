"""Everything `reuse` tells a person goes to stderr through here: notes, warnings, progress.

stdout is kept for data (tables, records). `--quiet` silences notes and progress; warnings
still print. Progress bars appear only when stderr is a terminal (pip's rule).

This module owns the rich Consoles: `console()` for stderr, `stdout_console()` for the data
that commands render as tables on stdout. Nothing else creates one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_state = {"quiet": False}
_console = None


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = bool(quiet)


def is_quiet() -> bool:
    return _state["quiet"]


def console():
    """The stderr console (rich), created on first use."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _console


def stdout_console(*, soft_wrap: bool = False):
    """A rich console on stdout, for data rendered as a table (not silenced by --quiet).

    On a terminal it takes the terminal's width; otherwise 200 columns, so a table piped to a
    file is not folded at 80. Made anew on each call: stdout may have been replaced since
    (tests capture it).

    Args:
        soft_wrap: leave long text lines unwrapped (default: wrap them at the width).
    """
    from rich.console import Console

    return Console(highlight=False, soft_wrap=soft_wrap, width=None if sys.stdout.isatty() else 200)


def info(message: str) -> None:
    """A note for the person running the command; silenced by --quiet."""
    if not _state["quiet"]:
        console().print(message, markup=False)


def warn(message: str) -> None:
    """A warning: always shown, on stderr."""
    console().print(f"Warning: {message}", style="yellow", markup=False)


def render(renderable, *, min_width: int | None = None) -> None:
    """Print a rich renderable (table, panel) on stderr unless --quiet.

    Args:
        min_width: when stderr is not a terminal (a log file), lay it out at least this wide
            rather than at rich's 80 columns, so that a wide table keeps every column.
    """
    if _state["quiet"]:
        return
    out = console()
    if min_width and not out.is_terminal and out.width < min_width:
        from rich.console import Console

        # A console of that width for this one print (rich caps print's width at the console's).
        out = Console(stderr=True, highlight=False, soft_wrap=True, width=min_width)
    out.print(renderable)


def track(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate with a progress bar on stderr, or plainly when not a terminal / quiet."""
    if _state["quiet"] or not sys.stderr.isatty():
        yield from iterable
        return
    with _rich_progress() as bar:
        task = bar.add_task(description, total=total, status="")
        for item in iterable:
            yield item
            bar.advance(task)


def _rich_progress(*, status: bool = False):
    """The rich Progress every bar uses (on the stderr console, gone when done); `status` adds
    a column for a task's `status` field."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    return Progress(*columns, console=console(), transient=True)


class _NoBar:
    """What `bar` yields when no bar is shown: every call does nothing."""

    def advance(self, status: str = "") -> None:
        pass


def bar(total: int, description: str = ""):
    """A progress bar on stderr that the caller advances (`.advance(status)`), as a context
    manager; a silent stand-in when stderr is not a terminal or --quiet.

    Args:
        total: steps in all (e.g. epochs).
        description: the text before the bar.
    """
    from contextlib import contextmanager

    @contextmanager
    def shown():
        if _state["quiet"] or not sys.stderr.isatty():
            yield _NoBar()
            return
        with _rich_progress(status=True) as progress:
            task = progress.add_task(description, total=total, status="")

            class Shown:
                def advance(self, status: str = "") -> None:
                    progress.update(task, advance=1, status=status)

            yield Shown()

    return shown()
