"""The feature-cache file layout: names, marks and attribute values (described in `reuse.cache`).

One place for what the writer, the reader and `reuse inspect` agree on: the mark and format
version, the dataset name of a tap, the temporary name an unfinished cache is written under,
the compression spec, and how attribute values read back from h5py.

Compression default: none. Measured (bench/bench_cache.py, the 300 ELU features of a
784->5x300 MLP, 60,000 rows, batch 256, shared 2-core machine; write / batched read of the
whole tap / size): none 1.8 s / 0.05 s / 73.2 MB; lzf 4.7 s / 0.01 s / 73.0 MB; gzip:1
7.2 s / 0.93 s / 67.4 MB; gzip:4 9.3 s / 0.82 s / 67.3 MB. Dense float features barely
compress (ELU outputs have no exact zeros): gzip saves 8% and makes every epoch's read ~17x
slower; lzf saves nothing and more than doubles the write. Reads from the page cache are
cheap either way, so none wins. lzf pays off for sparse features (ReLU convolution outputs
with many exact zeros): choose it with --compression lzf.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reuse.core.errors import UsageError
from reuse.formats.paths import CACHE_MARK, PathKind, classify

__all__ = [
    "CACHE_MARK",
    "DEFAULT_COMPRESSION",
    "FORMAT_VERSION",
    "TIMING_ATTRS",
    "attr_value",
    "is_cache",
    "parse_compression",
    "part_path",
    "tap_dataset_name",
    "INPUT_VIEWS_DATASET",
]

FORMAT_VERSION = 1  # the value of the CACHE_MARK root attribute
DEFAULT_COMPRESSION = "none"
TIMING_ATTRS = ("created",)
# The root attributes that say what a cache holds and how it was made: two files (a partial
# file and the run resuming it, or two shards of one cache) agree on all of them.
SETTINGS_ATTRS = (
    "fingerprint",
    "tap_dtypes",  # float16 storage (cache-features --dtype float16)
    "mixed_precision",
    "taps",
    "data_identity",
    "batch_size",
    "compression",
    "input_adapter",
    "augment",
    "views",
    "augment_seed",
    "image_shape",
    "input_views",
)


def is_cache(path: str | os.PathLike) -> bool:
    """Whether `path` is a feature cache (an HDF5 file with the CACHE_MARK attribute).

    Complete or not; False for a missing or unreadable file.
    """
    return classify(path) is PathKind.FEATURE_CACHE


def tap_dataset_name(tap: str) -> str:
    """The HDF5 dataset name for a tap: `/` (nested models) escaped as %2F."""
    return "features/" + tap.replace("%", "%25").replace("/", "%2F")


def part_path(output: str | os.PathLike) -> Path:
    """The deterministic temporary name a cache is written under: `.<name>.part.h5`."""
    out = Path(output)
    return out.with_name(f".{out.stem}.part{out.suffix or '.h5'}")


def parse_compression(spec: str | None) -> tuple[str | None, int | None, str]:
    """`none|lzf|gzip[:level]` -> (h5py compression, options, canonical spec).

    Raises:
        UsageError: an unknown method or a gzip level outside 0-9.
    """
    spec = (spec or DEFAULT_COMPRESSION).strip().lower()
    method, _, level = spec.partition(":")
    if method == "none" and not level:
        return None, None, "none"
    if method == "lzf" and not level:
        return "lzf", None, "lzf"
    if method == "gzip":
        try:
            value = int(level) if level else 4
        except ValueError:
            value = -1
        if not 0 <= value <= 9:
            raise UsageError(
                f"gzip level must be 0-9. Received: --compression {spec}",
                "use e.g. --compression gzip:4",
            )
        return "gzip", value, f"gzip:{value}"
    raise UsageError(f"unknown compression '{spec}'", "use --compression none, lzf or gzip[:level]")


def attr_value(value):
    """An HDF5 attribute as a plain Python value: bytes decoded, NumPy scalars unwrapped."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


INPUT_VIEWS_DATASET = "input_views"  # the augmented raw input rows, shape (K, N, *input_shape)


def views_dataset_name(tap: str) -> str:
    """The HDF5 dataset that holds the augmented views of `tap`: `views/<tap>`, shape (K, N, ...)."""
    return "views/" + tap.replace("%", "%25").replace("/", "%2F")


DIGEST_ATTR = "crc32"  # on each feature dataset: the CRC-32 of its values as written
CHECKSUMS = {"fletcher32": True}  # HDF5's per-chunk checksum, on every feature dataset


def digest(dataset, rows_per_read: int = 4096) -> int:
    """The CRC-32 of an array's (or h5py dataset's) values in C order, read `rows_per_read`
    rows along the first axis at a time, so a dataset larger than memory is fine.

    Written by `cache_features` as the `crc32` attribute of each feature dataset, and checked
    by `FeatureCache.array` / `views` when they load a whole dataset: values changed after the
    cache was written (even through h5py, which keeps the per-chunk fletcher32 sums right)
    do not pass.
    """
    import zlib

    crc = 0
    n = dataset.shape[0] if dataset.shape else 0
    if n == 0:
        return zlib.crc32(np.ascontiguousarray(dataset[()]).tobytes())
    for start in range(0, n, rows_per_read):
        block = np.ascontiguousarray(dataset[start : start + rows_per_read])
        crc = zlib.crc32(memoryview(block).cast("B"), crc)
    return crc
