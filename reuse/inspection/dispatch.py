"""`reuse inspect`: describe whatever file the user points at.

Dispatches on what the path is: a model (`.keras`, `.h5`, SavedModel folder), a weight-only
file (`.weights.h5`, `.npz`, `.safetensors`, PyTorch state dict, TensorFlow checkpoint) or a
feature cache. Models go through the TensorFlow-free fast path when it can give the same
answer (`reuse.inspection.fast`), else through a full Keras load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from reuse.core.errors import ModelLoadError


@dataclass
class Inspection:
    kind: str  # "model", "weights", "savedmodel", "cache"
    path: str
    columns: list[str]
    rows: list[dict]
    totals: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # extra facts shown above/below the table
    fast_path: bool = False


# The columns of a model's layer list, shared by the full load and the TensorFlow-free path.
MODEL_COLUMNS = ["index", "name", "class", "output_shape", "params", "trainable"]

WEIGHT_FILE_SUFFIXES = (".npz", ".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".index")


def _is_checkpoint_prefix(p: Path) -> bool:
    return Path(str(p) + ".index").exists() or (
        p.is_dir() and (p / "checkpoint").exists() and not (p / "saved_model.pb").exists()
    )


def inspect(
    path: str | os.PathLike,
    *,
    weights: bool = False,
    unsafe: bool = False,
    full_load: bool = False,
    arch: str | os.PathLike | None = None,
) -> Inspection:
    """Describe a model, weight file or feature cache.

    Example:
        >>> info = inspect("models/digits_0to4.keras")
        >>> info.rows[0]["name"]

    Args:
        path: what to describe.
        weights: for models, list every weight tensor with its statistics.
        unsafe: allow Lambda layers (Keras safe_mode off).
        full_load: skip the TensorFlow-free fast path.
        arch: the architecture for a `.weights.h5` file; with it the file is described as a
            model (weights loaded into the architecture) instead of as a list of tensors.

    Raises:
        ModelLoadError: the path is missing or cannot be read.
    """
    p = Path(path)
    name = p.name.lower()
    if not p.exists() and not _is_checkpoint_prefix(p):
        raise ModelLoadError(f"{p}: no such file or folder", "check the path")
    if arch is not None:
        return inspect_loaded(p, weights=weights, unsafe=unsafe, arch=arch)
    if (
        _is_checkpoint_prefix(p)
        or name.endswith(WEIGHT_FILE_SUFFIXES)
        or name.endswith(".weights.h5")
        or re.search(r"\.(data-\d+-of-\d+|meta)$", name)  # the other files of a TF checkpoint
    ):
        from reuse.formats import weight_files

        return weight_files.inspect_weights(p)
    if p.is_dir():
        from reuse.formats import model_io

        kind = model_io.model_kind(p)  # raises for a folder that is not a SavedModel
        from reuse.inspection import savedmodel as savedmodel_info

        return savedmodel_info.inspect_savedmodel(p, kind)
    if name.endswith((".h5", ".hdf5")):
        from reuse.cache import feature_cache

        if feature_cache.is_cache(p):
            return feature_cache.inspect_cache(p)
    if not full_load and not weights:
        from reuse.inspection import fast as fast_inspect

        fast = fast_inspect.try_inspect(p)
        if fast is not None:
            return fast
    return inspect_loaded(p, weights=weights, unsafe=unsafe)


def inspect_loaded(
    path: Path, *, weights: bool = False, unsafe: bool = False, arch=None
) -> Inspection:
    """Describe a model through a full Keras load."""
    from reuse.formats import model_io

    model = model_io.load_model(path, unsafe=unsafe, arch=arch)
    return inspect_model(model, path=str(path), weights=weights)


def inspect_model(model, *, path: str = "", weights: bool = False) -> Inspection:
    """Describe an in-memory Keras model."""
    from reuse.inspection import summary as model_summary

    if weights:
        rows = model_summary.weight_rows(model)
        columns = model_summary.WEIGHT_COLUMNS
    else:
        rows = model_summary.layer_rows(model)
        columns = model_summary.COLUMNS
    return Inspection(
        kind="model",
        path=path,
        columns=columns,
        rows=rows,
        totals=model_summary.totals(model),
        info={"model": model.name},
    )
