"""The partial file of a feature cache while it is written (`.<name>.part.h5`): its datasets
(features, views, input views), safe closing after a failed write, the checks that let
`resume=True` continue it, and the disk-space check of `--views K`."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from reuse.cache.layout import (
    CHECKSUMS,
    INPUT_VIEWS_DATASET,
    SETTINGS_ATTRS,
    attr_value,
    tap_dataset_name,
    views_dataset_name,
)
from reuse.core.errors import CacheIncomplete, CacheMismatch, UsageError

RESUME_KEYS = (*SETTINGS_ATTRS, "rows", "shard", "shard_start", "shard_stop", "total_rows")


@contextlib.contextmanager
def open_part(part: Path, mode: str = "r+"):
    """h5py.File(part, mode) for writing the partial cache, closed safely after a failure.

    After a failed write (a full disk) HDF5 cannot flush the file to close it, and h5py then
    crashed the process at exit (exit 139). The partial file is removed after any failure but
    an interrupt, so its space is given back first (truncated to 0 bytes): the close succeeds.
    """
    import h5py

    f = h5py.File(part, mode, track_order=True) if mode == "w" else h5py.File(part, mode)
    failed = False
    try:
        yield f
    except BaseException as err:
        failed = True
        if not isinstance(err, KeyboardInterrupt):
            with contextlib.suppress(OSError):
                os.truncate(part, 0)
        raise
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001 - the error in flight is the one to report
            if not failed:
                raise


def create_part(
    part: Path, attrs: dict, data, paths, shapes, dtypes, batch_size, comp, comp_opts
) -> None:
    """Create the partial file: one (N, *shape) dataset per tap in `paths`, chunked by
    `batch_size` rows, with labels, indices, the plan's `attrs` and `rows_done = 0`."""
    n = len(data)
    with open_part(part, "w") as f:
        for p in paths:
            ds = f.create_dataset(
                tap_dataset_name(p),
                shape=(n, *shapes[p]),
                dtype=dtypes[p],
                chunks=(min(batch_size, n), *shapes[p]),
                compression=comp,
                compression_opts=comp_opts,
                **CHECKSUMS,
            )
            ds.attrs["tap"] = p
        if data.y is not None:
            f.create_dataset("labels", data=np.asarray(data.y))
        f.create_dataset("indices", data=np.asarray(data.indices, dtype=np.int64))
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["rows_done"] = 0


def resumable_rows(part: Path, attrs: dict) -> int:
    """The rows already written to the partial file `part`, which `resume=True` skips.

    Raises:
        CacheIncomplete: the file cannot be read.
        CacheMismatch: it was started with other settings (any of `RESUME_KEYS`).
    """
    import h5py

    try:
        with h5py.File(part, "r") as f:
            old = {k: f.attrs.get(k) for k in RESUME_KEYS}
            done = int(f.attrs.get("rows_done", 0))
    except OSError as err:
        raise CacheIncomplete(
            f"the unfinished cache {part} cannot be read ({str(err).splitlines()[0][:100]})",
            "run the command again without --resume to start over",
        ) from None
    for key in RESUME_KEYS:
        if attr_value(old[key]) != attr_value(attrs.get(key)):
            raise CacheMismatch(
                f"the unfinished cache {part} was started with a different {key.replace('_', ' ')}",
                "run the same command as before with --resume, or drop --resume to start over",
            )
    return done


def create_input_views(part: Path, model, k: int, n: int, batch_size, comp, comp_opts):
    """The (K, N, *input shape) float32 dataset of augmented raw rows (`input_views=True`)."""

    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    with open_part(part) as f:
        f.create_dataset(
            INPUT_VIEWS_DATASET,
            shape=(k, n, *shape),
            dtype="float32",
            chunks=(1, min(batch_size, n), *shape),
            compression=comp,
            compression_opts=comp_opts,
            **CHECKSUMS,
        )


def check_views_fit(out: Path, views: int, n: int, shapes, dtypes, model=None) -> None:
    """Refuse --views K whose uncompressed views alone would not fit on the output's disk
    (a huge K used to write until the disk was full).

    Raises:
        UsageError: the views need more bytes than the output's disk has free.
    """
    import shutil

    row = sum(int(np.prod(shapes[p])) * np.dtype(dtypes[p]).itemsize for p in shapes)
    if model is not None:
        row += 4 * int(np.prod(model.inputs[0].shape[1:]))
    need = views * n * row
    try:
        free = shutil.disk_usage(out.resolve().parent).free
    except OSError:
        return
    if need > free:
        fit = max(0, free // max(1, n * row))
        raise UsageError(
            f"--views {views} needs {need / 1e9:,.1f} GB for the views of {n:,} rows, and "
            f"{out.resolve().parent} has {free / 1e9:,.1f} GB free",
            f"lower --views (at most {fit:,} fit there; e.g. --views 8), or write -o to a disk "
            "with room",
        )


def create_views(part: Path, paths, shapes, dtypes, k: int, n: int, batch_size, comp, comp_opts):
    """One (K, N, *shape) dataset of augmented views per tap, chunked one view at a time."""
    with open_part(part) as f:
        for p in paths:
            ds = f.create_dataset(
                views_dataset_name(p),
                shape=(k, n, *shapes[p]),
                dtype=dtypes[p],
                chunks=(1, min(batch_size, n), *shapes[p]),
                compression=comp,
                compression_opts=comp_opts,
                **CHECKSUMS,
            )
            ds.attrs["tap"] = p
