"""One row per layer of a loaded Keras model, and the parameter totals (what `inspect` shows).

The fast path (`reuse.inspection.fast`) produces the same rows from the file without TensorFlow.
Row fields: index, name, class, output_shape, params, trainable, depth.
"""

from __future__ import annotations

import numpy as np

from reuse.inspection.result import MODEL_COLUMNS, param_totals
from reuse.surgery.layer_tree import output_shape, walk, weight_count

COLUMNS = MODEL_COLUMNS
WEIGHT_COLUMNS = ["layer", "weight", "shape", "dtype", "trainable", "min", "max", "mean", "zeros"]


def layer_rows(model) -> list[dict]:
    rows = []
    for entry in walk(model):
        layer = entry.layer
        rows.append(
            {
                "index": entry.index,
                "name": entry.path,
                "class": type(layer).__name__,
                "output_shape": output_shape(layer),
                "params": weight_count(layer),
                "trainable": bool(layer.trainable),
                "depth": entry.depth,
            }
        )
    return rows


def _size(variables) -> int:
    return int(sum(int(np.prod(v.shape)) for v in variables))


def totals(model) -> dict:
    return param_totals(_size(model.trainable_weights), _size(model.non_trainable_weights))


def tensor_stats(array: np.ndarray) -> dict:
    """min, max, mean and the fraction of exact zeros of one tensor."""
    a = np.asarray(array)
    if a.size == 0:
        return {"min": None, "max": None, "mean": None, "zeros": None}
    if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
        return {"min": None, "max": None, "mean": None, "zeros": None}
    af = a.astype(np.float64, copy=False)
    return {
        "min": float(af.min()),
        "max": float(af.max()),
        "mean": float(af.mean()),
        "zeros": float(np.count_nonzero(a == 0) / a.size),
    }


def weight_rows(model) -> list[dict]:
    """One row per weight tensor: owning layer, shape, dtype, trainable, stats."""
    rows = []
    for entry in walk(model):
        if entry.is_container:
            continue
        trainable_ids = {id(v) for v in entry.layer.trainable_weights}
        for w in entry.layer.weights:
            value = np.asarray(w.numpy())
            rows.append(
                {
                    "layer": entry.path,
                    "weight": w.path if hasattr(w, "path") else w.name,
                    "shape": list(value.shape),
                    "dtype": str(value.dtype),
                    "trainable": id(w) in trainable_ids,
                    **tensor_stats(value),
                }
            )
    return rows
