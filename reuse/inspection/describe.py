"""`reuse inspect`: describe whatever file the user points at.

Dispatches on what the path is (`reuse.formats.paths.classify`): a model (`.keras`, `.h5`,
SavedModel folder), a weight-only file (`.weights.h5`, `.npz`, `.safetensors`, PyTorch state
dict, TensorFlow checkpoint: `reuse.inspection.weights`) or a feature cache
(`reuse.inspection.cache`). Models go through the TensorFlow-free fast path when it can give
the same answer (`reuse.inspection.fast`), else through a full Keras load (`inspect_loaded`,
`inspect_model`: rows from `reuse.inspection.summary`).
"""

from __future__ import annotations

import os
from pathlib import Path

from reuse.core.errors import ModelLoadError
from reuse.formats.paths import WEIGHT_KINDS, PathKind, classify
from reuse.inspection.result import Inspection


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

    Returns:
        An Inspection: kind "model" (one row per layer, or per weight tensor with `weights`),
        "weights", "savedmodel" or "cache".

    Raises:
        ModelLoadError: the path is missing or cannot be read.
        UnsafeModelError: the model holds a Lambda layer and `unsafe` is False.
    """
    p = Path(path)
    kind = classify(p)
    if kind is PathKind.MISSING:
        raise ModelLoadError(f"{p}: no such file or folder", "check the path")
    if arch is not None:
        return inspect_loaded(p, weights=weights, unsafe=unsafe, arch=arch)
    if kind in WEIGHT_KINDS:
        from reuse.inspection.weights import inspect_weights

        return inspect_weights(p)
    if kind in (PathKind.SAVEDMODEL, PathKind.KERAS_EXPORT):
        from reuse.inspection.savedmodel import inspect_savedmodel

        return inspect_savedmodel(p, kind.value, unsafe=unsafe)
    if kind is PathKind.FEATURE_CACHE:
        from reuse.inspection.cache import inspect_cache

        return inspect_cache(p)
    if not full_load and not weights:
        from reuse.inspection.fast import try_inspect

        fast = try_inspect(p)
        if fast is not None:
            return fast
    # Everything else goes to the full load, whose loader names what is wrong with the path
    # (a folder that is no SavedModel, an HDF5 file without a model, an unknown format).
    return inspect_loaded(p, weights=weights, unsafe=unsafe)


def inspect_loaded(
    path: Path, *, weights: bool = False, unsafe: bool = False, arch=None
) -> Inspection:
    """Describe a model through a full Keras load (`reuse.formats.model_io.load_model`).

    Raises:
        ModelLoadError, UnsafeModelError: see `load_model`.
    """
    from reuse.formats import model_io

    model = model_io.load_model(path, unsafe=unsafe, arch=arch)
    return inspect_model(model, path=str(path), weights=weights)


def inspect_model(model, *, path: str = "", weights: bool = False) -> Inspection:
    """Describe an in-memory Keras model.

    Args:
        model: a Keras model.
        path: where it came from (shown; "" for none).
        weights: one row per weight tensor (layer, weight, shape, dtype, trainable, min, max,
            mean, zeros) instead of one row per layer (MODEL_COLUMNS plus depth).

    Returns:
        An Inspection with kind "model" and parameter totals.
    """
    import reuse.inspection.summary as summary

    if weights:
        rows = summary.weight_rows(model)
        columns = summary.WEIGHT_COLUMNS
    else:
        rows = summary.layer_rows(model)
        columns = summary.COLUMNS
    return Inspection(
        kind="model",
        path=path,
        columns=columns,
        rows=rows,
        totals=summary.totals(model),
        info={"model": model.name, **inputs_outputs(model)},
    )


def inputs_outputs(model) -> dict:
    """{"inputs": [{name, shape}], "outputs": [{name, shape}]} of a loaded Keras model."""
    from reuse.formats.outputs import output_names

    def shape(t):
        return [None if d is None else int(d) for d in t.shape]

    def producer(t, fallback):
        history = getattr(t, "_keras_history", None)
        return getattr(getattr(history, "operation", None), "name", None) or fallback

    try:
        inputs = [
            {"name": producer(t, f"input_{i}"), "shape": shape(t)}
            for i, t in enumerate(model.inputs)
        ]
        names = output_names(model)
        outputs = [
            {"name": n, "shape": shape(t)} for n, t in zip(names, model.outputs, strict=True)
        ]
    except (AttributeError, ValueError):  # a subclassed model that was never called
        return {}
    return {"inputs": inputs, "outputs": outputs}
