"""Importing weights made elsewhere (PyTorch, TensorFlow checkpoints, weight files, other Keras
models) into a Keras model: matching (`importer`), renaming rules (`mapping`), per-framework
layout conversion (`layouts`) and the output check (`verify`)."""

from reuse.weights.importer import ImportReport, SourceTensor, import_weights
from reuse.weights.mapping import parse_mapping
from reuse.weights.verify import run_check, torch_reference

__all__ = [
    "ImportReport",
    "SourceTensor",
    "import_weights",
    "parse_mapping",
    "run_check",
    "torch_reference",
]
