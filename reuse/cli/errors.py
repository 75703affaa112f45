"""The one table from an exception to what the CLI says about it: a message and an exit code.

`reuse.cli.common.command` catches what a command raises and prints `Error: <message>` on
stderr for it, then exits with the code (no traceback unless REUSE_DEBUG=1). The table is
modelled on huggingface_hub's `cli/_errors.py`: an ordered mapping from exception type to a
formatter; the first type the exception is an instance of, whose formatter returns a Failure,
wins, so a subclass goes before its base. A formatter returns None for cases it does not know
(an OSError errno not listed, an ImportError of a module that is no optional extra); those,
and every type not in the table, get the generic line `<Type>: <text> — rerun with
REUSE_DEBUG=1 for the traceback` and exit code 1.

The rows: library errors (message, hint, exit code as raised), Ctrl-C, memory, missing
optional extras, OSError by errno (also h5py's OSError/RuntimeError whose text carries the
errno), decoding errors (`reuse.core.unreadable`: empty, truncated, pickled, not UTF-8) and
TensorFlow's OpError kinds, told apart by class name. docs/errors.md lists every answer.

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
from reuse.core.atomic import errno_and_name
from reuse.core.errors import ReuseError
from reuse.core.extras import EXTRAS, install_line
from reuse.core.unreadable import DECODE_ERRORS, explain


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
    install = f"install it with: {install_line(module)}"
    if isinstance(err, ModuleNotFoundError):
        return Failure(f"this needs {module}, which is not installed — {install}", exit_codes.ERROR)
    return Failure(
        f"{module} cannot be imported ({_first_line(err)}) — re{install}", exit_codes.ERROR
    )


_WRITE = "free some space, or choose another -o on another disk"
_PERMS = "check its permissions; to write, choose another -o"

# What an OSError's errno means to a person: (what happened, what to do). `{name}` is the path.
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.EROFS: ("cannot write {name}: read-only file system", "choose another -o"),
    errno.ENOSPC: ("cannot write {name}: no space left on the device", _WRITE),
    errno.EDQUOT: ("cannot write {name}: disk quota exceeded", _WRITE),
    errno.EFBIG: ("cannot write {name}: the file is too large for this file system", _WRITE),
    errno.EACCES: ("permission denied: {name}", _PERMS),
    errno.EPERM: ("operation not permitted: {name}", _PERMS),
    errno.ENOENT: ("no such file or folder: {name}", "check the path"),
    errno.EISDIR: ("{name} is a folder, not a file", "give the path of a file"),
    errno.ENOTDIR: ("{name}: a part of this path is a file, not a folder", "check the path"),
    errno.ENAMETOOLONG: ("the path is too long: {name}", "use a shorter path"),
    errno.ELOOP: ("too many symbolic links in {name}", "check the links on the path"),
    errno.EIO: (
        "input/output error on {name} (the disk or network file system failed)",
        "check the device (dmesg), or copy the file elsewhere",
    ),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n 4096) and run again"),
    errno.EAGAIN: (
        "{name} is locked by another program (HDF5 file locking)",
        "close the other program, or set HDF5_USE_FILE_LOCKING=FALSE",
    ),
    errno.EBUSY: ("{name} is busy (in use by another program)", "close it and run again"),
}


def _os_error(err: BaseException) -> Failure | None:
    code, name = errno_and_name(err)
    if code not in _OS_ERRORS:
        return _decoding(err)
    what, todo = _OS_ERRORS[code]
    if name is None:
        what = what.replace(": {name}", "").replace(" {name}", "").replace("{name} ", "the file ")
    return Failure(f"{what.format(name=name)} — {todo}", exit_codes.ERROR)


def _decoding(err: BaseException) -> Failure | None:
    """A file that cannot be decoded (empty, truncated, pickled, not UTF-8, corrupt), read
    where no reader named it."""
    explained = explain(err)
    if explained is None:
        return None
    return Failure(f"cannot read a file: {explained[0]} — {explained[1]}", exit_codes.ERROR)


_LABEL_RANGE = re.compile(
    r"label value of (-?\d+) which is outside the valid range of \[0, (\d+)\)"
)


def _tensorflow(err: BaseException) -> Failure | None:
    """TensorFlow's own errors (tf.errors.OpError and its kinds), told apart by class name
    so that this module needs no TensorFlow import."""
    names = [c.__name__ for c in type(err).__mro__ if c.__module__.startswith("tensorflow")]
    if "OpError" not in names:
        return None
    text = str(err)
    if "ResourceExhaustedError" in names or "OOM when allocating" in text:
        return _out_of_memory(err)
    labels = _LABEL_RANGE.search(text)
    if labels:
        value, classes = labels.groups()
        return Failure(
            f"a label value of {value} is outside the model's {classes} classes "
            f"(0..{int(classes) - 1}) — check the labels (--classes), or give the head as many "
            "outputs as there are classes",
            exit_codes.ERROR,
        )
    kind = names[0]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), kind)
    return Failure(
        f"TensorFlow stopped ({kind}): {line[:240]} — check that the data fits the model "
        "(shape, dtype, label values); REUSE_DEBUG=1 shows where",
        exit_codes.ERROR,
    )


def _other(err: BaseException) -> Failure | None:
    """Exceptions from outside reuse whose kind is known: h5py's RuntimeError with an errno
    (a full disk while writing), TensorFlow's errors, decoding errors."""
    if isinstance(err, RuntimeError) and errno_and_name(err)[0] in _OS_ERRORS:
        return _os_error(err)
    if isinstance(err, DECODE_ERRORS):
        return _decoding(err)
    return _tensorflow(err)


# The first match wins: keep subclasses above their bases.
ERROR_TABLE: dict[type[BaseException], Callable[[BaseException], Failure | None]] = {
    ReuseError: _library_error,
    KeyboardInterrupt: _interrupted,
    MemoryError: _out_of_memory,
    ImportError: _missing_extra,
    OSError: _os_error,
    Exception: _other,
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


def usage_line(message: str, command_path: str) -> str:
    """The one line for a usage error that Click finds while parsing the command line (an
    unknown option or command, a missing or malformed value, an extra argument):
    `<Click's message> — see `<command> --help``, without Click's usage and "Try" lines.

    >>> usage_line("No such option: --uptoo (Possible options: --to, --upto)", "reuse freeze")
    'No such option: --uptoo (possible options: --to, --upto) — see `reuse freeze --help`'
    """
    text = " ".join(message.split()).rstrip(".")
    text = text.replace("Value error, ", "").replace("(Possible options:", "(possible options:")
    return f"{text} — see `{command_path} --help`"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
