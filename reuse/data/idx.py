"""MNIST-style IDX files (gzip-compressed or not): the format LeCun's MNIST files use.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per dimension.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError

_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def is_idx(path: str | os.PathLike) -> bool:
    """Whether a file is named like an IDX file (`reuse.formats.paths.is_idx_name`)."""
    from reuse.formats.paths import is_idx_name

    return is_idx_name(path)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file into an array (native byte order).

    Raises:
        DataError: the file is not IDX, or shorter than its header says.
    """
    p = Path(path)
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file", "check the --data path") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{p}: cannot read ({err})", "check that the file is complete") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"{p} is not an IDX file (bad magic number)", "pass MNIST-style IDX files")
    dtype = _TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims)) if dims else 0
    if len(data) < header + count * dtype.itemsize:
        raise DataError(
            f"{p} is truncated: the header says {dims}, the file holds less",
            "download or copy the file again",
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as IDX (gzip when the name ends in .gz); used by tests and examples."""
    codes = {v.newbyteorder("=") if v.byteorder != "|" else v: k for k, v in _TYPES.items()}
    a = np.asarray(array)
    native = a.dtype.newbyteorder("=")
    code = next((k for k, v in _TYPES.items() if v.newbyteorder("=") == native), None)
    if code is None:
        raise DataError(f"cannot write dtype {a.dtype} as IDX", "use uint8, int32 or float32")
    del codes
    big = a.astype(_TYPES[code], copy=False)
    header = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + big.tobytes())


def idx_header(path: str | os.PathLike) -> tuple[np.dtype, list[int], int]:
    """(dtype, dims, header length) of an uncompressed IDX file, reading only its header.

    Raises:
        DataError: the file is not IDX.
    """
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
            raise DataError(
                f"{p} is not an IDX file (bad magic number)", "pass MNIST-style IDX files"
            )
        ndim = head[3]
        raw = f.read(4 * ndim)
    dims = [int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    return _TYPES[head[2]], dims, 4 + 4 * ndim


def open_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file as an array: memory-mapped when uncompressed, decompressed into memory when .gz.

    A gzip stream cannot be read at random offsets, so gunzip large files to read them lazily.

    Example:
        >>> x = open_idx("train-images-idx3-ubyte")   # np.memmap, shape (60000, 28, 28)

    Raises:
        DataError: the file is not IDX, or shorter than its header says.
    """
    p = Path(path)
    if p.name.lower().endswith(".gz"):
        return read_idx(p)
    if not p.exists():
        raise DataError(f"{p}: no such file", "check the --data path")
    dtype, dims, header = idx_header(p)
    count = int(np.prod(dims)) if dims else 0
    if p.stat().st_size < header + count * dtype.itemsize:
        raise DataError(
            f"{p} is truncated: the header says {dims}, the file holds less",
            "download or copy the file again",
        )
    return np.memmap(p, dtype=dtype, mode="r", offset=header, shape=tuple(dims))
