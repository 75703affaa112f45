"""How `--help` reads: one placeholder convention, whole words, whole summaries.

Every command is registered with `ReuseCommand` (see `reuse.cli._register`), which

- gives each option that declares no `metavar` the placeholder of `PLACEHOLDERS` (by option
  name) or of its type (`N` for integers, `F` for other numbers, `PATH` for paths), so help
  never shows Typer's `<str>` / `<path>` / `<list[str]>`. The convention: MODEL, PATH, DIR,
  NAME[,NAME...], N (an integer), F (a number), SPEC (a `NAME[:key=value,...]` spec), and
  `a|b|c` for a fixed choice;
- shows an argument as its placeholder alone (`MODEL`, not `MODEL <str>`);
- wraps option texts between words only: no word is split (`piecewise:...`) and no line
  breaks at a hyphen (`--checkpoint-dir`);
- lists each command in `reuse --help` with its first sentence, whole (Click cuts it at 45
  characters with "...").
"""

from __future__ import annotations

import re
import textwrap

import typer.core
from typer import _click  # Typer >= 0.29 vendors its own Click

#: Placeholders by option name; options missing here get one from their type.
PLACEHOLDERS = {
    "--output": "PATH",
    "--features": "PATH",
    "--history": "PATH",
    "--plot": "PATH",
    "--check": "PATH",
    "--reference": "PATH",
    "--into": "MODEL",
    "--labels": "PATH",
    "--tensorboard": "DIR",
    "--checkpoint-dir": "DIR",
    "--cut": "NAME",
    "--loss": "NAME",
    "--at": "NAME[,NAME...]",
    "--only": "NAME[,NAME...]",
    "--metric": "NAME",
    "--x-key": "NAME",
    "--y-key": "NAME",
    "--label-col": "NAME|N",
    "--layers": "REGEX",
    "--head": "auto|SPEC",
    "--arch": "SPEC",
    "--optimizer": "SPEC",
    "--schedule": "SPEC",
    "--map": "SRC=DST",
    "--lr": "F|from-record",
    "--unfreeze": "none|all|top:N|gradual",
    "--stage-lr": "div|find",
    "--reuse-depth": "keep|search[:K]",
    "--compression": "none|lzf|gzip[:LEVEL]",
    "--rule": "valley|steepest",
    "--scope": "layer|global",
    "--title": "TEXT",
}


def placeholder(param) -> str | None:
    """The placeholder `param` shows in help: its own metavar, the table's, or its type's."""
    if param.metavar is not None:
        return param.metavar
    if getattr(param, "is_flag", False):
        return None
    for opt in getattr(param, "opts", ()):
        if opt in PLACEHOLDERS:
            return PLACEHOLDERS[opt]
    kind = param.display_type(None).strip("<>")
    if kind in ("int", "int range"):
        return "N"
    if kind in ("float", "float range"):
        return "F"
    if kind == "path" or kind.startswith("list[path"):
        return "PATH"
    if "|" in kind:
        return kind
    return param.name.upper() if isinstance(param, typer.core.TyperArgument) else "TEXT"


def short_help(doc: str | None) -> str:
    """A command's summary for `reuse --help`: its docstring's first sentence, whole.

    >>> short_help("Mark layers trainable again and write a new model (the mirror of freeze).")
    'Mark layers trainable again and write a new model'
    """
    first = (doc or "").strip().split("\n\n")[0].replace("\n", " ")
    first = re.split(r"(?<=[a-z0-9)])\.(\s|$)", first)[0]
    first = re.split(r"; | \(", first)[0]
    return first.strip().rstrip(".")


def _wrap(text: str, width: int) -> list[str]:
    """Wrap between words only (no split words, no break after a hyphen); keeps paragraphs."""
    lines: list[str] = []
    for i, paragraph in enumerate(text.split("\n\n")):
        if i:
            lines.append("")
        if paragraph.startswith("\b"):
            lines.extend(paragraph.splitlines()[1:])
            continue
        lines.extend(
            textwrap.wrap(
                " ".join(paragraph.split()),
                width,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return lines


class ReuseHelpFormatter(_click.HelpFormatter):
    """Click's formatter, with option texts wrapped between words only."""

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        if not rows:
            return
        first_col = min(max(len(first) for first, _ in rows), col_max) + col_spacing
        indent = " " * self.current_indent
        for first, second in rows:
            self.write(f"{indent}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = _wrap(second, max(self.width - first_col - 2, 10))
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write((" " * (first_col + self.current_indent) + line).rstrip() + "\n")


class ReuseContext(_click.Context):
    formatter_class = ReuseHelpFormatter


class _NamesItsUsageErrors:
    """Click raises some parse errors (an option missing its value) without a context; give
    them the command's, so the line names `reuse COMMAND --help`, not `reuse --help`."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.UsageError as err:
            if err.ctx is None:
                err.ctx = ctx
            raise


class ReuseCommand(_NamesItsUsageErrors, typer.core.TyperCommand):
    """A Typer command whose help follows the conventions in this module's docstring."""

    context_class = ReuseContext

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            param.metavar = placeholder(param)
            if isinstance(param, typer.core.TyperArgument):
                # Typer appends the type ("MODEL <str>"); the placeholder says it already.
                param.display_type_rich = lambda ctx: ""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or short_help(self.help)


class OneLineUsageError(_click.exceptions.UsageError):
    """A Click usage error shown as the one line every `reuse` error is: `Error: <what> — see
    `reuse COMMAND --help``, without Click's "Usage:" and "Try ... for help." lines."""

    def __init__(self, err: _click.exceptions.UsageError):
        super().__init__(err.format_message(), err.ctx)
        self.exit_code = err.exit_code

    def show(self, file=None) -> None:
        from reuse.cli.errors import usage_line

        path = self.ctx.command_path if self.ctx is not None else "reuse"
        _click.echo(
            f"Error: {usage_line(self.format_message(), path)}", err=file is None, file=file
        )


def _one_line(err):
    """`err` as a OneLineUsageError; help asked for by calling a group bare (Click's
    NoArgsIsHelpError) and errors converted already stay as they are."""
    if isinstance(err, (OneLineUsageError, _click.exceptions.NoArgsIsHelpError)):
        return err
    return OneLineUsageError(err)


class ReuseGroup(_NamesItsUsageErrors, typer.core.TyperGroup):
    """The `reuse` group: its own help and its commands' summaries use the same formatter;
    usage errors anywhere below it (unknown options and commands, bad values) print one line."""

    context_class = ReuseContext

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except _click.exceptions.UsageError as err:
            raise _one_line(err) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _click.exceptions.UsageError as err:
            raise _one_line(err) from None
