"""The one way `reuse` writes an output: beside the target, made durable, then renamed onto it.

A command that fails or is killed never leaves a half-written output behind, and a power
loss right after a write does not leave a renamed but empty file (the ext4 "zero-length file"
problem). Every write follows pip's `utils/filesystem.py::adjacent_tmp_file` + `replace`:

1. write a temporary file (or folder) in the target's folder, so the rename never crosses
   file systems; its name starts with `.` and holds `.part` (`.model.k3j2.part.keras`);
2. flush it and `os.fsync` it (a folder: every file and subfolder in it);
3. `os.replace` it onto the target;
4. `os.fsync` the target's folder, so the rename itself is on disk (POSIX only; Windows
   cannot open a folder).

Entry points: `atomic_path` (a temporary path for writers that take a path: Keras, h5py,
zipfile, matplotlib), `atomic_write` (an open file, for text and bytes), and `commit` (the
last three steps, for a writer that manages its own temporary file, like the feature cache's
resumable `.part.h5`). OSErrors raised while writing name the target, not the temporary file,
so the CLI's error table can say "cannot write <target>".
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reuse.core.errors import OutputError

PART = ".part"  # every temporary name holds this

# h5py reports a failed open or write as OSError or RuntimeError("... (file write failed: ...,
# filename = 'x.h5', ..., errno = 28, error message = 'No space left on device', ...)") with
# no errno attribute: the numbers are only in the text.
_H5_ERRNO = re.compile(r"errno = (\d+)")
_H5_NAME = re.compile(r"\b(?:file)?name = '([^']*)'")


def check_output_path(
    output: str | os.PathLike, inputs: list, *, in_place: bool = False, flag: str = "-o"
) -> Path:
    """Refuse an output path that would overwrite one of the inputs (unless `in_place`).
    `flag` is the option the hints name (`-o`, `--history`, `--plot`).

    Returns:
        The output as a Path.

    Raises:
        OutputError: the output is a folder, is one of `inputs`, or its folder does not exist,
            is a file, or cannot be written (checked before any work starts).
    """
    out = Path(output)
    if out.exists() and out.is_dir():
        raise OutputError(f"output {out} is a folder", f"give a file name with {flag}")
    if not in_place:
        for item in inputs:
            if item is None:
                continue
            try:
                same = out.exists() and os.path.samefile(out, item)
            except OSError:
                same = False
            if same or out.resolve() == Path(item).resolve():
                raise OutputError(
                    f"output {out} is the input file",
                    f"write to another path with {flag}, or pass --in-place to replace it",
                )
    if not out.parent.exists():
        raise OutputError(
            f"folder {out.parent} does not exist", f"create it or choose another {flag}"
        )
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent} is a file, not a folder", f"choose another {flag}")
    _require_writable(out.parent, flag)
    return out


def check_output_dir(folder: str | os.PathLike, flag: str) -> Path:
    """Refuse an output folder (`--checkpoint-dir`, `--tensorboard`) that cannot be made or
    written, before any work starts: it is a file, or its nearest existing folder is read-only.
    The folder itself may not exist yet (it is made when first written).

    Raises:
        OutputError: the hint names `flag`.
    """
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{flag} {target} is a file", f"give a folder with {flag}")
    existing = target
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{existing} is a file, not a folder", f"choose another {flag}")
    _require_writable(existing, flag)
    return target


def _require_writable(folder: Path, flag: str) -> None:
    if not os.access(folder, os.W_OK):
        raise OutputError(
            f"cannot write into {folder} (read-only or no permission)", f"choose another {flag}"
        )


def temporary_sibling(target: str | os.PathLike, suffix: str | None = None) -> Path:
    """A fresh, unused name in `target`'s folder: `.<stem>.<random>.part<suffix>`.

    `suffix` defaults to the target's extensions (`.weights.h5`, `.keras`): Keras and
    matplotlib choose the format from the name. Nothing exists at the returned path.

    Raises:
        OSError: the folder cannot be written (errno EROFS, EACCES, ENOSPC, ENOENT); the
            error's filename is `target`.
    """
    target = Path(target)
    suffix = suffix if suffix is not None else "".join(target.suffixes)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f"{PART}{suffix}", dir=target.parent
        )
    except OSError as err:
        raise _naming(err, target) from None
    os.close(fd)
    os.unlink(tmp)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success make it durable and rename it onto
    `target`. The writer may create a file or a folder there.

    Args:
        target: the output file or folder. An existing one is replaced only on success.
        suffix: the temporary name's ending (default: the target's extensions).

    On any exception (KeyboardInterrupt included) the temporary file or folder is removed
    and the old target is left as it was; the exception propagates.

    Raises:
        OSError: writing or renaming failed; a filename of the temporary path is replaced
            by `target`.
    """
    target = Path(target)
    tmp = temporary_sibling(target, suffix)
    try:
        yield tmp
        commit(tmp, target)
    except BaseException as err:
        _remove(tmp)
        renamed = _naming(err, target, tmp) if isinstance(err, OSError) else err
        if renamed is err:
            raise
        raise renamed from err


@contextlib.contextmanager
def atomic_write(
    target: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8", newline=None
) -> Iterator[IO]:
    """Open a temporary file beside `target` for writing; on success flush, fsync and rename it
    onto `target` (see `atomic_path` for failures).

    Args:
        mode: "w" (text, default) or "wb" (bytes).
        encoding, newline: as for `open`, text mode only (default UTF-8).
    """
    text = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    with atomic_path(target) as tmp, open(tmp, mode, **text) as f:
        yield f


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically and durably; returns the target as a Path."""
    with atomic_write(target) as f:
        f.write(text)
    return Path(target)


def commit(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """fsync `tmp` (a file, or a folder and everything in it), rename it onto `target`, and
    fsync the target's folder.

    A folder target that exists is moved aside first (POSIX cannot rename a folder onto a
    non-empty one), and put back if the rename fails.

    Raises:
        OSError: from fsync or the rename; `tmp` is left in place.
    """
    tmp, target = Path(tmp), Path(target)
    _fsync_tree(tmp)
    aside = None
    if tmp.is_dir() and target.is_dir() and not target.is_symlink():
        aside = temporary_sibling(target, ".old")
        os.replace(target, aside)
    try:
        os.replace(tmp, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    _fsync_folder(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _fsync_tree(path: Path) -> None:
    if not path.is_dir():
        _fsync_file(path)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            _fsync_file(Path(folder) / name)
        _fsync_folder(Path(folder))


def _fsync_file(path: Path) -> None:
    # Linux and macOS flush a file's data through any descriptor; Windows needs write access.
    flags = os.O_RDWR if os.name == "nt" else os.O_RDONLY
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    """Make a rename in `path` durable. POSIX only; some file systems refuse it (EINVAL)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _naming(err: OSError, target: Path, tmp: Path | None = None) -> OSError:
    """`err` with `target` as its filename when it names `tmp` (or something in it) or nothing.

    A person chose the target; the temporary name means nothing to them. Returns `err` itself
    when it is about another path (an input read inside the block) or has no errno.
    """
    name = err.filename
    ours = name is None or tmp is None or str(name).startswith(str(tmp))
    if err.errno is None or not ours:
        return err
    return type(err)(err.errno, err.strerror, str(target))


def errno_and_name(err: BaseException) -> tuple[int | None, str | None]:
    """The errno and file name of an OSError, or of an h5py OSError/RuntimeError whose text
    holds them (`errno = 28`, `name = 'x.h5'`); (None, None) when there are none."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno, None if err.filename is None else str(err.filename)
    if not isinstance(err, (OSError, RuntimeError)):
        return None, None
    text = str(err)
    code, name = _H5_ERRNO.search(text), _H5_NAME.search(text)
    return (int(code.group(1)) if code else None), (name.group(1) if name else None)


def disk_error(err: BaseException, target: str | os.PathLike) -> OSError | None:
    """`err` as an OSError about `target` when it is a file-system failure (an OSError with an
    errno, or h5py's OSError/RuntimeError carrying one in its text, e.g. a full disk while
    writing a feature cache); None for anything else.

    Example:
        >>> disk_error(RuntimeError("Can't write data (file write failed: ..., errno = 28, "
        ...     "error message = 'No space left on device')"), "feats.h5")
        OSError(28, 'No space left on device', 'feats.h5')
    """
    code, _ = errno_and_name(err)
    if code is None:
        return None
    return OSError(code, os.strerror(code), str(target))
