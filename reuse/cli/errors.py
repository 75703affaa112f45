"""The one table from an exception to what the CLI says about it: a message and an exit code.

`reuse.cli.common.command` catches what a command raises and prints `Error: <message>` on
stderr for it, then exits with the code (no traceback unless REUSE_DEBUG=1). The table is
modelled on huggingface_hub's `cli/_errors.py`: an ordered mapping from exception type to a
formatter; the first type the exception is an instance of, whose formatter returns a Failure,
wins, so a subclass goes before its base. A formatter returns None for cases it does not know
(an OSError errno not listed, an ImportError of a module that is no optional extra); those,
and every type not in the table, get the generic line `<Type>: <text> — rerun with
REUSE_DEBUG=1 for the traceback` and exit code 1.

To teach the CLI a new error: raise a `reuse.core.errors.ReuseError` subclass from the
library (its message, hint and `exit_code` are used as they are), or add a row here for an
exception that comes from outside `reuse`.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass

from reuse.core import exit_codes
from reuse.core.errors import ReuseError

PACKAGE = "keras-reuse"

# Optional extras of pyproject.toml, by the top-level module that needs them.
EXTRAS = {
    "matplotlib": "plot",
    "torch": "torch",
    "safetensors": "safetensors",
    "sklearn": "demo",
    "tensorboard": "tensorboard",
    "optuna": "tune",
}


@dataclass(frozen=True)
class Failure:
    """What the CLI prints for an exception (`Error: {message}`) and the exit code."""

    message: str
    exit_code: int


def _library_error(err: ReuseError) -> Failure:
    return Failure(str(err), err.exit_code)


def _interrupted(err: KeyboardInterrupt) -> Failure:
    return Failure(
        "interrupted — nothing was written; run the command again", exit_codes.INTERRUPTED
    )


def _out_of_memory(err: MemoryError) -> Failure:
    return Failure("out of memory — use a smaller --batch-size or --limit", exit_codes.ERROR)


def _missing_extra(err: ImportError) -> Failure | None:
    module = (err.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    install = f"install it with: pip install '{PACKAGE}[{extra}]'"
    if isinstance(err, ModuleNotFoundError):
        return Failure(f"this needs {module}, which is not installed — {install}", exit_codes.ERROR)
    return Failure(
        f"{module} cannot be imported ({_first_line(err)}) — re{install}", exit_codes.ERROR
    )


# What an OSError's errno means to a person: (what happened, what to do). `{name}` is the path.
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.EROFS: ("cannot write {name}: read-only file system", "choose another -o"),
    errno.ENOSPC: (
        "cannot write {name}: no space left on the device",
        "free some space, or choose another -o on another disk",
    ),
    errno.EDQUOT: (
        "cannot write {name}: disk quota exceeded",
        "free some space, or choose another -o on another disk",
    ),
    errno.EACCES: (
        "permission denied: {name}",
        "check its permissions; to write, choose another -o",
    ),
    errno.EPERM: (
        "operation not permitted: {name}",
        "check its permissions; to write, choose another -o",
    ),
    errno.ENOENT: ("no such file or folder: {name}", "check the path"),
}


def _os_error(err: OSError) -> Failure | None:
    code, name = _errno_and_name(err)
    if code not in _OS_ERRORS:
        return None
    what, todo = _OS_ERRORS[code]
    if name is None:
        what = what.replace(": {name}", "").replace(" {name}", "")
    return Failure(f"{what.format(name=name)} — {todo}", exit_codes.ERROR)


# The first match wins: keep subclasses above their bases.
ERROR_TABLE: dict[type[BaseException], Callable[[BaseException], Failure | None]] = {
    ReuseError: _library_error,
    KeyboardInterrupt: _interrupted,
    MemoryError: _out_of_memory,
    ImportError: _missing_extra,
    OSError: _os_error,
}


def known_failure(err: BaseException) -> Failure | None:
    """The Failure of the first table row that matches `err` and knows it; None otherwise."""
    for kind, formatter in ERROR_TABLE.items():
        if isinstance(err, kind):
            failure = formatter(err)
            if failure is not None:
                return failure
    return None


def failure_for(err: BaseException) -> Failure:
    """The message and exit code for `err`: its table row, or the generic line."""
    known = known_failure(err)
    if known is not None:
        return known
    return Failure(
        f"{type(err).__name__}: {_first_line(err)[:300]} — rerun with REUSE_DEBUG=1 for the traceback",
        exit_codes.ERROR,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# h5py reports a failed open as OSError("Unable to ... (unable to open file: name = 'x.h5',
# errno = 30, error message = 'Read-only file system', ...)") with no errno attribute.
_H5_ERRNO = re.compile(r"errno = (\d+)")
_H5_NAME = re.compile(r"name = '([^']*)'")


def _errno_and_name(err: OSError) -> tuple[int | None, str | None]:
    if err.errno is not None:
        return err.errno, None if err.filename is None else str(err.filename)
    text = str(err)
    code, name = _H5_ERRNO.search(text), _H5_NAME.search(text)
    return (int(code.group(1)) if code else None), (name.group(1) if name else None)
