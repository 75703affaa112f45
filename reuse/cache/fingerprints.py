"""The fingerprint of a model up to its taps: what decides whether a feature cache still fits.

Digests of the configs, wiring and weights of every layer the taps depend on (config keys that
do not change what the frozen layers compute, such as initializers and `trainable`, are left
out). `cache_features` stores it in the cache; `open_cache(path, model=...)` recomputes it and
refuses a cache whose fingerprint differs, saying whether the architecture, the weights or the
tap names changed.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

# Config keys that do not change what the frozen layers compute, and that finetune may change.
_IGNORED_KEY_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_IGNORED_KEYS = {"trainable", "seed"}


def _clean_config(value):
    if isinstance(value, dict):
        return {
            k: _clean_config(v)
            for k, v in sorted(value.items())
            if k not in _IGNORED_KEYS and not k.endswith(_IGNORED_KEY_SUFFIXES)
        }
    if isinstance(value, (list, tuple)):
        return [_clean_config(v) for v in value]
    return value


def _layer_config(layer) -> str:
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - some ops have no config; their class stands for them
        config = {}
    return json.dumps(_clean_config(config), sort_keys=True, default=str)


def fingerprint(model, taps: list[str], graph=None) -> dict:
    """Digests of everything the taps depend on: the layers' configs, wiring and weights.

    `finetune` calls this with the cache's taps and compares it with the cache's attributes.

    Example:
        >>> fp = fingerprint(model, ["hidden2"])
        >>> fp["fingerprint"] == reuse.cache.open_cache("feats.h5").fingerprint

    Args:
        model: the Keras model.
        taps: tap names (valid cut points).
        graph: a `reuse.surgery.cuts.trace(model)` result, to avoid tracing again.

    Returns:
        {"fingerprint", "architecture", "weights": sha256 hex digests, "taps": full tap
        names, "layers": {path: {"config": digest, "weights": digest}}}.

    Raises:
        LayerNotFound, CutError: a tap is not a valid cut point of the model.
    """
    from reuse.surgery import cuts

    graph = graph or cuts.trace(model)
    paths = [cuts.check_cut(model, t, graph) for t in taps]
    positions = [graph.by_path(p).position for p in paths]
    arch, weights = hashlib.sha256(), hashlib.sha256()
    for t in graph.inputs:
        arch.update(f"input {tuple(t.shape[1:])} {t.dtype}\n".encode())
    layers = {}
    for p in graph.ancestors(positions):
        call = graph.calls[p]
        sources = [
            graph.calls[graph.producer[i]].path if graph.producer.get(i, -1) >= 0 else "<input>"
            for i in call.inputs
        ]
        config = f"{call.path} {type(call.layer).__name__} {sources} {_layer_config(call.layer)}\n"
        arch.update(config.encode())
        w_digest = hashlib.sha256()
        for w in getattr(call.layer, "weights", []):
            value = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w))
            w_digest.update(f"{value.shape} {value.dtype}\n".encode())
            w_digest.update(value.tobytes())
        weights.update(call.path.encode() + b"\n" + w_digest.digest())
        layers[call.path] = {
            "config": hashlib.sha256(config.encode()).hexdigest()[:16],
            "weights": w_digest.hexdigest()[:16],
        }
    total = hashlib.sha256()
    total.update(arch.digest() + weights.digest() + json.dumps(paths).encode())
    return {
        "fingerprint": total.hexdigest(),
        "architecture": arch.hexdigest(),
        "weights": weights.hexdigest(),
        "taps": paths,
        "layers": layers,
    }
