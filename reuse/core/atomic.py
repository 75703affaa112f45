"""Write outputs to a temporary name beside the target and rename when complete.

A command that fails or is killed never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reuse.core.errors import OutputError


def check_output_path(output: str | os.PathLike, inputs: list, *, in_place: bool = False) -> Path:
    """Refuse an output path that would overwrite one of the inputs (unless `in_place`)."""
    out = Path(output)
    if out.exists() and out.is_dir():
        raise OutputError(f"output {out} is a folder", "give a file name with -o")
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
                    "write to another path with -o, or pass --in-place to replace it",
                )
    if not out.parent.exists():
        raise OutputError(f"folder {out.parent} does not exist", "create it or choose another -o")
    return out


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success.

    The temporary name keeps the target's extension (Keras chooses the format from it).
    """
    target = Path(target)
    suffix = suffix if suffix is not None else "".join(target.suffixes) or target.suffix
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".part{suffix}", dir=target.parent
    )
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise
