"""int8 weight quantization for deployment, through Keras' own `model.quantize("int8")`.

Keras replaces the float kernel of every Dense, EinsumDense and Embedding layer by int8 values
with a float scale per output channel, and dequantizes at run time (activations are quantized
on the fly); other layers are left as they are. `quantize_model` saves the result, loads it
back (a quantized `.keras` must reload before it is worth anything), and, given labelled data,
evaluates the model before and after.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reuse.core.errors import UsageError
from reuse.inference.evaluate import Evaluation, evaluate, predict_array

QUANTIZABLE = ("Dense", "EinsumDense", "Embedding")


@dataclass
class QuantizeResult:
    """What `quantize_model` wrote and measured.

    Attributes:
        path: the quantized .keras file. layers: paths of the quantized layers.
        bytes_before, bytes_after: file sizes of the input and the output, in bytes.
        before, after: evaluations on the data (None without labelled data); `after` is of
            the reloaded file.
        max_abs_diff: the largest difference between the outputs before and after (None
            without data).
    """

    path: Path
    layers: list[str]
    bytes_before: int
    bytes_after: int
    before: Evaluation | None = None
    after: Evaluation | None = None
    max_abs_diff: float | None = None


def file_bytes(path: str | os.PathLike) -> int:
    """Size of a file, or of every file under a folder (a SavedModel), in bytes."""
    p = Path(path)
    return (
        p.stat().st_size
        if p.is_file()
        else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    )


def quantize_model(
    model, output, *, source=None, data=None, batch_size: int = 256
) -> QuantizeResult:
    """Quantize `model`'s weights to int8 in place, save it to `output` (.keras) and load it back.

    Args:
        model: a Keras model (loaded from `source`).
        output: the .keras file to write (atomically).
        source: the file the model came from (its size is `bytes_before`; default: the model
            saved as is).
        data: a Dataset; with labels, evaluated before and after; without, only the outputs
            are compared.
        batch_size: rows per forward pass.

    Raises:
        UsageError: the model has no layer Keras can quantize (Dense, EinsumDense, Embedding).
        ModelLoadError: the quantized file does not load back.
    """
    from reuse.formats import model_io
    from reuse.surgery.layer_tree import leaves

    layers = [e.path for e in leaves(model) if type(e.layer).__name__ in QUANTIZABLE]
    if not layers:
        raise UsageError(
            f"model {model.name} has no Dense, EinsumDense or Embedding layer to quantize",
            "int8 quantization in Keras covers those layers only",
        )
    labelled = data is not None and getattr(data, "y", None) is not None
    before = evaluate(model, data, batch_size=batch_size) if labelled else None
    outputs = predict_array(model, data, batch_size) if data is not None else None
    if source is None:
        model_io.save_model(model, output)
        source = output
    size_before = file_bytes(source)
    with warnings.catch_warnings():  # "Layer InputLayer does not have a `quantize` method"
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        model.quantize("int8")
    model_io.save_model(model, output)
    # Our own file, written a line above from a model the caller already loaded.
    reloaded = model_io.load_model(output, unsafe=True)
    result = QuantizeResult(Path(output), layers, size_before, file_bytes(output))
    if data is not None:
        after = predict_array(reloaded, data, batch_size)
        result.max_abs_diff = float(np.max(np.abs(after - outputs)))
        result.after = evaluate(reloaded, data, batch_size=batch_size) if labelled else None
        result.before = before
    return result
