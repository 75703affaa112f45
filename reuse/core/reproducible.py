"""Byte-reproducible files: the same content always gives the same bytes (and sha256).

Zip-based formats embed the time they were written: `np.savez` stamps each member, and a
Keras `.keras` archive stamps `model.weights.h5` and records `date_saved` in
`metadata.json`. The shipped models and the demo data are checked by sha256, so these
helpers write them with a fixed timestamp instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

# The earliest time a zip member can carry; any fixed value would do.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes.

    Example:
        >>> sha256_file("models/digits_0to4.keras")  # doctest: +SKIP
        '3f1c...'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_members(path: Path, members: list[tuple[str, bytes]], compression: int) -> None:
    from reuse.core.atomic import atomic_path

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=compression) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays as an uncompressed `.npz` whose bytes depend only on the arrays.

    Example:
        >>> save_npz("train.npz", {"x": x, "y": y})  # doctest: +SKIP

    Args:
        path: the output file; written atomically.
        arrays: name -> array, written in this order (object arrays are refused).

    Returns:
        The path written.

    Raises:
        ValueError: an array holds Python objects (it would need pickling).
    """
    members = []
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
        members.append((f"{name}.npy", buffer.getvalue()))
    target = Path(path)
    _write_members(target, members, zipfile.ZIP_STORED)
    return target


def normalize_keras_archive(path: str | os.PathLike) -> Path:
    """Rewrite a `.keras` file in place with fixed timestamps, so equal models are equal bytes.

    The members keep their order and content, except `metadata.json`'s `date_saved`, which
    becomes FIXED_DATE_SAVED. Keras does not read that field when loading.

    Example:
        >>> model.save("m.keras"); normalize_keras_archive("m.keras")  # doctest: +SKIP

    Args:
        path: a `.keras` archive written by `model.save()`.

    Returns:
        The path.
    """
    target = Path(path)
    with zipfile.ZipFile(target) as archive:
        members = []
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = FIXED_DATE_SAVED
                data = json.dumps(meta).encode()
            members.append((info.filename, data))
    # Keras writes its archives uncompressed; keep it so (the weights barely compress).
    _write_members(target, members, zipfile.ZIP_STORED)
    return target
