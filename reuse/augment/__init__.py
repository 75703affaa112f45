"""Data augmentation from Keras' own preprocessing layers: the `--augment` spec, the
augmenter used while training, augmented views for the feature cache, and test-time
augmentation.

`spec` imports no TensorFlow; the other names are imported lazily on first use.
"""

from __future__ import annotations

import importlib

from reuse.augment.spec import AUGMENT_HELP, PRESETS, AugmentSpec, parse_augment

_LAZY = {
    "Augmenter": "reuse.augment.pipeline",
    "build_augmenter": "reuse.augment.pipeline",
    "infer_value_range": "reuse.augment.pipeline",
    "views": "reuse.augment.pipeline",
    "tta_predict": "reuse.augment.tta",
}

__all__ = ["AUGMENT_HELP", "PRESETS", "AugmentSpec", "parse_augment", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reuse.augment' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
