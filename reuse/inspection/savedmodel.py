"""Describe a SavedModel folder: its signatures (inputs, outputs) and its variables by layer.

Works for a Keras 3 `model.export()` folder and for a legacy tf.keras SavedModel alike: both
are read with `tf.saved_model.load`, which needs neither Keras nor tf_keras.
"""

from __future__ import annotations

import os
from pathlib import Path

from reuse.core.errors import ModelLoadError
from reuse.inspection.result import Inspection, param_totals

COLUMNS = ["layer", "variable", "shape", "dtype", "trainable"]


def _spec(name: str, spec) -> dict:
    shape = (
        None
        if spec.shape.rank is None
        else [None if d is None else int(d) for d in spec.shape.as_list()]
    )
    return {"name": name, "shape": shape, "dtype": spec.dtype.name}


def signatures(loaded) -> dict:
    """{signature name: {"inputs": [...], "outputs": [...]}} with name, shape, dtype each."""
    import tensorflow as tf

    out = {}
    for key, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        if not isinstance(outputs, dict):
            flat = tf.nest.flatten(outputs)
            outputs = {f"output_{i}": t for i, t in enumerate(flat)}
        out[key] = {
            "inputs": [_spec(n, s) for n, s in sorted(kwargs.items())],
            "outputs": [_spec(n, s) for n, s in sorted(outputs.items())],
        }
    return out


def inspect_savedmodel(path: str | os.PathLike, kind: str, *, unsafe: bool = False) -> Inspection:
    """Signatures, their inputs/outputs, and the variables grouped by layer.

    Example:
        >>> info = inspect_savedmodel("exported/", "keras_export")
        >>> info.info["signatures"]["serve"]["inputs"][0]["shape"]
        [None, 8]

    Args:
        path: the SavedModel folder.
        kind: 'keras_export' (from `model.export()`) or 'savedmodel' (legacy tf.keras).
        unsafe: read a SavedModel whose graph reaches outside the model (`--unsafe`); its
            graph is scanned before TensorFlow loads it (`reuse.formats.graph_scan`).

    Returns:
        An Inspection with kind 'savedmodel': one row per variable (layer, variable, shape,
        dtype, trainable), totals of values, and `info["signatures"]`.

    Raises:
        ModelLoadError: TensorFlow cannot read the folder.
        UnsafeModelError: the graph reaches outside the model and `unsafe` is False.
    """
    import tensorflow as tf

    from reuse.formats.graph_scan import check_savedmodel

    p = Path(path)
    check_savedmodel(p, unsafe=unsafe)
    try:
        loaded = tf.saved_model.load(str(p))
    except Exception as err:  # TensorFlow raises several types for a damaged folder
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot read SavedModel {p}: {first}", "check that the folder is complete"
        ) from err
    trainable_ids = {id(v) for v in getattr(loaded, "trainable_variables", [])}
    rows = []
    for v in getattr(loaded, "variables", []):
        name = v.name.split(":")[0]
        layer, _, variable = name.rpartition("/")
        rows.append(
            {
                "layer": layer or "(model)",
                "variable": variable,
                "shape": [int(d) for d in v.shape],
                "dtype": v.dtype.name,
                "trainable": id(v) in trainable_ids,
            }
        )
    rows.sort(key=lambda r: r["layer"])  # stable: keeps each layer's variable order
    sizes = [(int(_prod(r["shape"])), r["trainable"]) for r in rows]
    trainable = sum(n for n, t in sizes if t)
    frozen = sum(n for n, t in sizes if not t)
    return Inspection(
        kind="savedmodel",
        path=str(p),
        columns=list(COLUMNS),
        rows=rows,
        totals=param_totals(trainable, frozen),
        info={
            "format": "Keras export (model.export)"
            if kind == "keras_export"
            else "legacy tf.keras SavedModel",
            "signatures": signatures(loaded),
        },
    )


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
