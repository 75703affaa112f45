"""LoRA: low-rank adapters on the reused layers, with Keras' own implementation.

`finetune --lora RANK` calls Keras' `layer.enable_lora(rank, lora_alpha=...)` on the matched
reused layers (Dense, EinsumDense, Embedding and the Conv layers all have it): the layer then
computes with `kernel + (alpha / rank) * A @ B`, where A (in x rank, he-uniform) and B (rank x
out, zeros) are the only weights of the layer that train. The base kernel and bias stay
frozen, bit for bit (`freeze_bases` keeps them so when a stage sets the layer trainable). The
head trains in full, as PEFT's `modules_to_save`.

After training, `merged_model` folds each `A @ B` into its kernel (Keras' own
`save_own_variables` does the sum) and returns a plain model of the same layers, which any
Keras loads. `save_adapters` writes instead only what the run learned — every A and B, and
the head's layers and weights — into a small `.npz`; `merge_adapters` applies such a file to
the base model it was trained on (`reuse lora merge BASE ADAPTERS -o merged.keras`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from reuse.core.errors import ModelLoadError, UsageError
from reuse.training.transfer import TransferModel, freeze_bases, is_lora_var

ADAPTER_FORMAT = "reuse-lora-adapters/1"
_LORA_KEYS = ("lora_rank", "lora_alpha")


def lora_targets(transfer: TransferModel, pattern: str | None) -> list[str]:
    """The reused layers that get adapters: those with Keras LoRA support whose path (or name)
    fully matches `pattern` (default: all of them), bottom first.

    Raises:
        UsageError: no reused layer matches, or none supports LoRA.
    """
    from reuse.surgery.layer_tree import find

    capable = [p for p in transfer.reused if hasattr(find(transfer.model, p).layer, "enable_lora")]
    chosen = [
        p
        for p in capable
        if pattern is None or re.fullmatch(pattern, p) or re.fullmatch(pattern, p.split("/")[-1])
    ]
    if not chosen:
        what = f"matches --lora-layers {pattern!r}" if pattern else "supports LoRA"
        raise UsageError(
            f"no reused layer {what} (LoRA-capable reused layers: {', '.join(capable) or 'none'})",
            "LoRA needs Dense, EinsumDense, Embedding or Conv layers below the cut; "
            "give --lora-layers a regex of their names",
        )
    return chosen


def enable_lora(transfer: TransferModel, rank: int, alpha: float | None, pattern=None) -> list[str]:
    """Put rank-`rank` adapters on the matched reused layers (`lora_targets`); returns their paths.

    `alpha` scales the update by alpha / rank (default: alpha = rank, Keras' default). Seeded
    by `keras.utils.set_random_seed` like every initializer.

    Raises:
        UsageError: a matched layer has a kernel constraint (Keras' LoRA refuses them).
    """
    from reuse.surgery.layer_tree import find

    paths = lora_targets(transfer, pattern)
    for path in paths:
        layer = find(transfer.model, path).layer
        try:
            layer.enable_lora(rank, lora_alpha=alpha)
        except ValueError as err:
            raise UsageError(
                f"cannot put LoRA adapters on {path}: {err}",
                "leave that layer out with --lora-layers",
            ) from None
    freeze_bases(transfer.model)
    return paths


def count(variables) -> int:
    """Scalars in `variables` (parameters)."""
    return int(sum(int(np.prod(v.shape)) for v in variables))


def full_finetune_params(transfer: TransferModel, *, train_bn: bool = False) -> int:
    """What `--unfreeze all` would train: every weight of the reused layers and the head,
    adapters and moving statistics left out (BatchNormalization only with `train_bn`)."""
    from reuse.surgery.layer_tree import leaves

    total = 0
    for entry in leaves(transfer.model):
        if type(entry.layer).__name__ == "BatchNormalization" and not train_bn:
            continue
        total += count(
            v
            for v in entry.layer.weights
            if not is_lora_var(v) and not v.name.startswith("moving_")
        )
    return total


def lora_layers(model) -> dict[str, dict]:
    """{path: {"rank", "alpha"}} of the layers of `model` that carry adapters."""
    from reuse.surgery.layer_tree import leaves

    return {
        e.path: {"rank": int(e.layer.lora_rank), "alpha": float(e.layer.lora_alpha)}
        for e in leaves(model)
        if getattr(e.layer, "lora_enabled", False)
    }


def _strip_lora(value):
    if isinstance(value, dict):
        return {k: _strip_lora(v) for k, v in value.items() if k not in _LORA_KEYS}
    if isinstance(value, list):
        return [_strip_lora(v) for v in value]
    return value


def merged_model(model):
    """A plain copy of `model` with every adapter folded into its kernel.

    Each LoRA layer's kernel becomes `kernel + (alpha / rank) * A @ B` (computed by Keras'
    `save_own_variables`); the layers and their other weights are the same, the config has no
    `lora_rank`, so the model loads in any Keras. A model without adapters comes back as is.
    """
    from reuse.surgery.layer_tree import find, leaves

    if not lora_layers(model):
        return model
    plain = model.__class__.from_config(_strip_lora(model.get_config()))
    for entry in leaves(model):
        store: dict = {}
        entry.layer.save_own_variables(store)
        find(plain, entry.path).layer.load_own_variables(store)
    return plain


# ----------------------------------------------------------------------------- adapter files


def save_adapters(path: str | os.PathLike, transfer: TransferModel, *, base_name: str) -> Path:
    """Write what a LoRA run learned into one `.npz` (atomically): every adapter's A and B, and
    the head's layer configs and weights, with the cut and a digest of the base layers.

    `merge_adapters(base, path)` rebuilds the fine-tuned model from the base model. Returns the
    path. Raises OutputError for a path that cannot be written.
    """
    import keras

    from reuse.core import atomic
    from reuse.surgery.layer_tree import find

    adapted = lora_layers(transfer.model)
    arrays: dict[str, np.ndarray] = {}
    for p in adapted:
        layer = find(transfer.model, p).layer
        for v in layer.weights:
            if is_lora_var(v):
                arrays[f"lora/{p}/{v.name}"] = np.asarray(v)
    head = []
    for name in transfer.head:
        layer = transfer.model.get_layer(name)
        head.append(keras.saving.serialize_keras_object(layer))
        for i, w in enumerate(layer.get_weights()):
            arrays[f"head/{name}/{i}"] = np.asarray(w)
    meta = {
        "format": ADAPTER_FORMAT,
        "base": base_name,
        "cut": transfer.cut,
        "layers": adapted,
        "head": head,
        "base_digest": base_digest(transfer.model, list(adapted)),
    }
    arrays["__meta__"] = np.array(json.dumps(meta))
    out = Path(path)
    with atomic.atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return out


def base_digest(model, paths: list[str]) -> str:
    """sha256 of the frozen kernels (and biases) of the adapted layers: ties adapters to a base."""
    import hashlib

    from reuse.surgery.layer_tree import find

    digest = hashlib.sha256()
    for p in paths:
        for v in find(model, p).layer.weights:
            if not is_lora_var(v):
                value = np.ascontiguousarray(np.asarray(v))
                digest.update(f"{p}/{v.name} {value.shape} {value.dtype}\n".encode())
                digest.update(value.tobytes())
    return digest.hexdigest()


def read_adapters(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of an adapter file written by `save_adapters`.

    Raises:
        ModelLoadError: not such a file.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(
            f"{path} is not a LoRA adapter file ({str(err).splitlines()[0][:80]})",
            "give the .npz that `reuse finetune --lora R --lora-save adapters` wrote",
        ) from None
    if meta.get("format") != ADAPTER_FORMAT:
        raise ModelLoadError(
            f"{path} is not a LoRA adapter file (format {meta.get('format')!r})",
            "give the .npz that `reuse finetune --lora R --lora-save adapters` wrote",
        )
    return meta, arrays


def merge_adapters(base, path: str | os.PathLike):
    """The fine-tuned model from `base` and an adapter file: the base cut where the run cut it,
    the saved head on top, every adapter folded into its kernel. A plain Keras model.

    Raises:
        ModelLoadError: not an adapter file, or `base` is not the model the adapters were
            trained on (its adapted layers' weights differ).
        LayerNotFound: the base has no layer the file names.
    """
    import keras

    from reuse.surgery import cuts
    from reuse.surgery.layer_tree import find

    meta, arrays = read_adapters(path)
    find(base, meta["cut"])
    bottom = cuts.bottom_model(base, [meta["cut"]])
    x = bottom.outputs[0]
    head_layers = [keras.saving.deserialize_keras_object(c) for c in meta["head"]]
    for layer in head_layers:
        x = layer(x)
    model = keras.Model(bottom.inputs, x, name=f"{base.name}_reuse")
    for layer in head_layers:
        n = len(layer.weights)
        layer.set_weights([arrays[f"head/{layer.name}/{i}"] for i in range(n)])
    digest = base_digest(model, list(meta["layers"]))
    if digest != meta["base_digest"]:
        raise ModelLoadError(
            f"the adapters in {path} were trained on another base ({meta.get('base')}): "
            "the weights of the adapted layers differ",
            f"merge them into the model they were trained on ({meta.get('base')})",
        )
    for p, spec in meta["layers"].items():
        layer = find(model, p).layer
        layer.enable_lora(int(spec["rank"]), lora_alpha=float(spec["alpha"]))
        for v in layer.weights:
            if is_lora_var(v):
                v.assign(arrays[f"lora/{p}/{v.name}"])
    return merged_model(model)
