"""reuse: transfer learning on TensorFlow / Keras 3 — inspect, freeze, cache, fine-tune.

The public API is imported lazily, so `import reuse` does not import TensorFlow:

    import reuse
    model = reuse.load_model("models/digits_0to4.keras")
    changes = reuse.freeze(model, upto="hidden2")
"""

from __future__ import annotations

import importlib

from reuse._version import __version__
from reuse.core import quiet_tf

# TensorFlow's C++ start-up chatter is not for the person at the shell: the first
# `import tensorflow` in the process (whoever makes it) runs quietly; numerics are unchanged.
quiet_tf.install()

_API = {
    "load_model": "reuse.formats.model_io",
    "save_model": "reuse.formats.model_io",
    "inspect": "reuse.inspection",
    "inspect_model": "reuse.inspection",
    "freeze": "reuse.surgery.freezing",
    "unfreeze": "reuse.surgery.freezing",
    "load_data": "reuse.data.dataset",
    "cache_features": "reuse.cache",
    "open_cache": "reuse.cache",
    "finetune": "reuse.training.finetune",
    "evaluate": "reuse.inference.evaluate",
    "predict": "reuse.inference.evaluate",
    "import_weights": "reuse.weights.importer",
    "lr_find": "reuse.guide.lr_find",
    "check": "reuse.guide.check",
    "sparsify": "reuse.guide.sparsity",
    "plot_history": "reuse.guide.plots",
    "build_augmenter": "reuse.augment.pipeline",
    "tta_predict": "reuse.augment.tta",
    "merged_model": "reuse.training.lora",
    "merge_adapters": "reuse.training.lora",
    "quantize_model": "reuse.inference.quantize",
    "pretrain_autoencoder": "reuse.pretrain.autoencoder",
    "pretrain_pairs": "reuse.pretrain.pairs",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'reuse' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
