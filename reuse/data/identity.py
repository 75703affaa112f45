"""What a data source is: content digests of its files, so that caches can tell data apart.

sha256 of the file (of the inputs and labels files together when there are two); for a file
larger than SAMPLE_ABOVE (512 MB), a sample: its size, the first and last 16 MB and 64 evenly
spaced 1 MB blocks ("sha256-sampled"); for an image folder, of the sorted list of files with
their sizes and modification times ("sha256-listing"). Each file is hashed once per process
(memoized on path, size and modification time).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SAMPLE_ABOVE = 512 * 1024 * 1024
_EDGE = 16 * 1024 * 1024
_BLOCK = 1024 * 1024
_BLOCKS = 64

_DIGESTS: dict[tuple, tuple[str, str]] = {}


def _file_digest(path: Path) -> tuple[str, str]:
    """(hex digest, method) of one file, memoized on (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = hashlib.sha256()
    size = stat.st_size
    with open(path, "rb") as f:
        if size <= SAMPLE_ABOVE:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            method = "sha256"
        else:
            # Hashing every byte of a many-GB file would dominate a run; a sample of the size,
            # both ends and 64 spread blocks catches truncation, appends and most edits.
            digest.update(str(size).encode())
            digest.update(f.read(_EDGE))
            span = size - 2 * _EDGE - _BLOCK
            for i in range(_BLOCKS):
                f.seek(_EDGE + span * i // (_BLOCKS - 1))
                digest.update(f.read(_BLOCK))
            f.seek(size - _EDGE)
            digest.update(f.read(_EDGE))
            method = "sha256-sampled"
    _DIGESTS[key] = (digest.hexdigest(), method)
    return _DIGESTS[key]


def file_identity(path: str | os.PathLike) -> dict:
    """{"path", "size", "sha256", "hash"} of one file (sampled above 512 MB; see the module doc).

    Example:
        >>> file_identity("train.npz")["sha256"][:12]
    """
    p = Path(path)
    digest, method = _file_digest(p)
    return {"path": str(p.resolve()), "size": p.stat().st_size, "sha256": digest, "hash": method}


def files_identity(files: list[Path], labels: Path | None = None) -> dict:
    """Identity of inputs in `files[0]` (+ more files, e.g. an IDX labels file, + `labels`)."""
    every = list(files) + ([labels] if labels is not None else [])
    if len(every) == 1:
        identity = file_identity(every[0])
    else:
        parts = [file_identity(f) for f in every]
        combined = hashlib.sha256("".join(f"{p['sha256']}\n" for p in parts).encode()).hexdigest()
        methods = {p["hash"] for p in parts}
        identity = {
            "path": parts[0]["path"],
            "size": sum(p["size"] for p in parts),
            "sha256": combined,
            "hash": "sha256-sampled" if "sha256-sampled" in methods else "sha256",
        }
        identity["labels"] = parts[-1]["path"]
    return identity


def folder_identity(root: Path, files: list[Path]) -> dict:
    """{"path", "size", "sha256", "hash": "sha256-listing"} of an image folder: a digest of the
    sorted list of `files` (relative paths, sizes, modification times), not of their bytes.
    """
    digest = hashlib.sha256()
    total = 0
    for f in sorted(files):
        st = f.stat()
        total += st.st_size
        digest.update(
            f"{f.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode()
        )
    return {
        "path": str(root.resolve()),
        "size": total,
        "sha256": digest.hexdigest(),
        "hash": "sha256-listing",
    }
