"""The feature cache: HDF5 files of what the frozen part of a model computes (interim)."""

from __future__ import annotations

CACHE_MARK = "reuse_feature_cache"


def is_cache(path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return CACHE_MARK in f.attrs
    except OSError:
        return False
