"""What a failed read of a file means to a person: the kind of damage, and what to do.

Readers of every format (`reuse.data.readers`, `reuse.formats`) and the CLI's error table
(`reuse.cli.errors`) share this one classification, so an empty `.npz`, a CSV in Latin-1, a
pickled `.npy` or a truncated gzip file each get the same answer wherever they are read:

    empty or truncated   EOFError, struct.error, "truncated" or "No data left" in the text
    not UTF-8 text       UnicodeDecodeError
    pickled objects      pickle.UnpicklingError, or NumPy's "allow_pickle" / "Python objects"
    not a zip archive    zipfile.BadZipFile (.npz, .keras)
    corrupt compression  zlib.error, gzip.BadGzipFile
    not HDF5             h5py's "file signature not found"

Example:
    >>> explain(EOFError("No data left in file"))
    ('the file is empty or ends early', 'check that it was written completely')
"""

from __future__ import annotations

import pickle
import struct
import zipfile
import zlib

EMPTY = ("the file is empty or ends early", "check that it was written completely")
PICKLED = (
    "it holds pickled Python objects, which reuse never loads (loading them can run code)",
    "save plain numeric arrays, e.g. np.save(path, x.astype('float32'))",
)
NOT_UTF8 = (
    "it is not UTF-8 text ({detail})",
    "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)",
)
CORRUPT = ("the compressed data is corrupt ({detail})", "check that the file is complete")
NOT_ZIP = (
    "it is not a zip archive (truncated, or another format)",
    "check that the file is complete",
)
NOT_HDF5 = ("it is not an HDF5 file (no HDF5 signature)", "check the file's format")
NOT_NUMPY = (
    "it is neither a zip archive nor a NumPy array file (it starts with {start})",
    "write it with np.savez(path, x=x, y=y) or np.save(path, x); give a CSV file a .csv name",
)

# The exception types that mean "these bytes cannot be decoded", beyond OSError and ValueError.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    UnicodeDecodeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def numpy_signature_missing(path) -> str | None:
    """The first bytes of `path` (repr) when they are neither a zip archive's, a NumPy array
    file's nor a binary pickle's, else None: NumPy reads any other file as a pickle, so its
    "pickled data" error then means "not a .npz/.npy file at all" (a text file, say)."""
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError:
        return None
    if not start or start.startswith((b"PK", b"\x93NUMPY", b"\x80")):
        return None
    return repr(start)


def explain(err: BaseException) -> tuple[str, str] | None:
    """(what is wrong with the file, what to do) for a decoding failure; None when `err` is
    not one (a missing file, a permission error: the CLI's OSError rows answer those).

    Args:
        err: the exception a reader raised.
    """
    text = str(err)
    if isinstance(err, UnicodeDecodeError):
        detail = f"byte 0x{err.object[err.start]:02x} at position {err.start}"
        return NOT_UTF8[0].format(detail=detail), NOT_UTF8[1]
    if (
        isinstance(err, pickle.UnpicklingError)
        or "allow_pickle" in text
        or "Python objects" in text
    ):
        return PICKLED
    if isinstance(err, (EOFError, struct.error)) or any(
        s in text for s in ("No data left", "truncated", "Truncated", "end of file", "EOF")
    ):
        return EMPTY
    if "file signature not found" in text:
        return NOT_HDF5
    if isinstance(err, zipfile.BadZipFile):
        return NOT_ZIP
    if isinstance(err, zlib.error) or type(err).__name__ == "BadGzipFile":
        return CORRUPT[0].format(detail=_first_line(err)), CORRUPT[1]
    return None
