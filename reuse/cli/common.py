"""What every command shares: option types, the error boundary, and record output.

Option types are `Annotated` aliases defined once here (as huggingface_hub's CLI does), so
every command spells `--json`, `--quiet`, `--unsafe` and `-o` the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import traceback
from enum import Enum
from typing import Annotated

import typer

from reuse.cli import errors
from reuse.core import exit_codes, report

ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="Model file or folder. Omit it (or pass -) to read the record of the previous "
        "reuse command from stdin.",
        show_default=False,
        metavar="MODEL",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the pipeline record as JSON even on a terminal.")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Silence notes and progress on stderr.")
]
UnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--unsafe",
        help="Allow models that run stored code (Lambda layers) and SavedModels whose graph "
        "reads or writes files, prints, calls Python or uses the network. Only for files you trust.",
    ),
]
OutputKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--output-key",
        metavar="NAME",
        help="The output to reuse of a model with several: a SavedModel signature's output "
        "name or a Keras output layer's name (`reuse inspect MODEL` lists them).",
    ),
]


def seed_option(what: str):
    """A `--seed N` option whose help says what it fixes in this command."""
    return Annotated[int | None, typer.Option("--seed", metavar="N", help=f"Fix {what}.")]


#: --seed of the commands that train: the row selection, data order, the new layers'
#: initialization, dropout and augmentation.
SeedOpt = seed_option(
    "the rows --limit and --per-class pick, the data order, the new layers' initialization, "
    "dropout and augmentation"
)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format of the data.")]


def debug_enabled() -> bool:
    return os.environ.get("REUSE_DEBUG", "") not in ("", "0")


def fail(message: str, code: int) -> None:
    report.console().print(f"Error: {message}", style="red", markup=False, highlight=False)
    raise typer.Exit(code)


def command(func):
    """The error boundary of a command: an exception becomes one `Error:` line on stderr and
    an exit code, as `reuse.cli.errors.ERROR_TABLE` says.

    Ctrl-C always answers "interrupted" with exit code 130, also when the library or
    TensorFlow turned the KeyboardInterrupt into another exception on its way up (a SIGINT
    handler notes that it came). With REUSE_DEBUG=1 the traceback is printed above the
    `Error:` line; the exit code stays the same. A closed stdout (`| head`) is not an error.
    A command outside `reuse.core.backend.ANY_BACKEND_COMMANDS` refuses at start when Keras
    would run on another backend than TensorFlow.
    """
    from reuse.core import backend

    # finetune_command -> "finetune"; a sub-command's double underscore: lora__merge -> "lora merge"
    name = func.__name__.removesuffix("_command").replace("__", " ").replace("_", "-")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _watch_interrupts() as interrupted:
            try:
                if name not in backend.ANY_BACKEND_COMMANDS:
                    backend.require_tensorflow(name)
                return func(*args, **kwargs)
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except BrokenPipeError:
                _silence_stdout()
                raise typer.Exit(exit_codes.SUCCESS) from None
            except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the one boundary
                if debug_enabled():
                    traceback.print_exception(err, file=sys.stderr)
                # A library error that already answers the interrupt (exit 130) keeps its
                # words, e.g. tune's "the finished trials are kept in ...".
                explained = getattr(err, "exit_code", None) == exit_codes.INTERRUPTED
                if (interrupted or _came_from_interrupt(err)) and not explained:
                    err = KeyboardInterrupt()
                failure = errors.failure_for(err)
                fail(failure.message, failure.exit_code)

    return wrapper


@contextlib.contextmanager
def _watch_interrupts():
    """Yield a list that becomes truthy once SIGINT arrives; SIGINT still raises
    KeyboardInterrupt. Only the main thread may set signal handlers: elsewhere, the list stays
    empty."""
    seen: list[bool] = []

    def on_sigint(signum, frame):
        seen.append(True)
        signal.default_int_handler(signum, frame)

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _came_from_interrupt(err: BaseException) -> bool:
    """True when a KeyboardInterrupt is in `err`'s chain of causes and contexts."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _silence_stdout() -> None:
    # After a broken pipe, Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def emit_record(record: dict, json_flag: bool, human=None) -> None:
    """Print the record on stdout as one JSON line, or `human()` on a terminal."""
    from reuse.core import record as records

    if records.wants_json(json_flag) or human is None:
        sys.stdout.write(records.dumps(record) + "\n")
        sys.stdout.flush()
    else:
        human()
