"""What every command shares: option types, the error boundary, and record output.

Option types are `Annotated` aliases defined once here (as huggingface_hub's CLI does), so
every command spells `--json`, `--quiet`, `--unsafe` and `-o` the same way.
"""

from __future__ import annotations

import functools
import os
import sys
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
        help="Allow models that run stored code (Lambda layers). Only for files you trust.",
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Fix data order, initialization, dropout and augmentation (also of --tta and --views).",
    ),
]


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

    Tracebacks appear only with REUSE_DEBUG=1. A closed stdout (`| head`) is not an error.
    A command outside `reuse.core.backend.ANY_BACKEND_COMMANDS` refuses at start when Keras
    would run on another backend than TensorFlow.
    """
    from reuse.core import backend

    # finetune_command -> "finetune"; a sub-command's double underscore: lora__merge -> "lora merge"
    name = func.__name__.removesuffix("_command").replace("__", " ").replace("_", "-")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
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
                raise
            failure = errors.failure_for(err)
            fail(failure.message, failure.exit_code)

    return wrapper


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
