"""Shared by the build scripts in models/: deterministic set-up, the MLP, saving, the card.

Not part of the `reuse` package: these scripts rebuild the models shipped in this folder.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The scripts run against this checkout's `reuse`, installed or not.
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEED = 42


def deterministic(seed: int = SEED) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def mlp(name: str, n_in: int, hidden: int, units: int, n_out: int):
    """Input -> hidden1..hiddenN Dense(units, ELU, He normal) -> Dense(n_out, softmax) 'output'."""
    import keras

    layers = [keras.Input((n_in,), name="pixels")]
    for i in range(1, hidden + 1):
        layers.append(
            keras.layers.Dense(
                units, activation="elu", kernel_initializer="he_normal", name=f"hidden{i}"
            )
        )
    layers.append(keras.layers.Dense(n_out, activation="softmax", name="output"))
    return keras.Sequential(layers, name=name)


def train(
    model, train_xy, valid_xy, *, lr: float, batch_size: int, epochs: int, patience: int
) -> dict:
    """Adam + sparse categorical cross-entropy, early stopping on val_loss (best weights kept)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    start = time.perf_counter()
    history = model.fit(
        *train_xy,
        validation_data=valid_xy,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=2,
    )
    losses = history.history["val_loss"]
    best = min(range(len(losses)), key=losses.__getitem__)
    return {
        "epochs_run": len(losses),
        "best_epoch": best + 1,
        "val_loss": float(losses[best]),
        "val_accuracy": float(history.history["val_accuracy"][best]),
        "seconds": time.perf_counter() - start,
    }


def save_shipped(model, path: Path):
    """Save `model` without optimizer state, with fixed timestamps; return the reloaded model."""
    from reuse.core.reproducible import normalize_keras_archive
    from reuse.formats.model_io import load_model, save_model

    # From the config, not clone_model(): a clone of a compiled model is compiled too, and
    # its optimizer state (twice the weights, for Adam) would be saved with it.
    clean = type(model).from_config(model.get_config())
    clean.set_weights(model.get_weights())
    if clean.compiled:
        raise RuntimeError("the model to ship must not be compiled")
    save_model(clean, path)
    normalize_keras_archive(path)
    return load_model(path)


def accuracy(model, x, y) -> tuple[float, int]:
    """(accuracy, number correct) of `model` on (x, y)."""
    import numpy as np

    pred = np.argmax(model.predict(x, batch_size=1024, verbose=0), axis=1)
    correct = int((pred == y).sum())
    return correct / len(y), correct


def weights_sha256(path: Path) -> str:
    import hashlib

    with zipfile.ZipFile(path) as archive:
        return hashlib.sha256(archive.read("model.weights.h5")).hexdigest()


def layer_table(model) -> str:
    rows = [
        "| # | Layer | Class | Output shape | Activation | Initializer | Parameters |",
        "|---|---|---|---|---|---|---:|",
    ]
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        rows.append(
            f"| | `{name}` (input) | Input | {tuple(tensor.shape)} {tensor.dtype} | | | 0 |"
        )
    for i, layer in enumerate(model.layers):
        config = layer.get_config()
        init = config.get("kernel_initializer", {})
        init_name = init.get("class_name", "") if isinstance(init, dict) else str(init)
        rows.append(
            f"| {i} | `{layer.name}` | {type(layer).__name__} | {tuple(layer.output.shape)} | "
            f"{config.get('activation', '')} | {init_name} | {layer.count_params():,} |"
        )
    rows.append(f"| | **total** | | | | | **{model.count_params():,}** |")
    return "\n".join(rows)


def environment() -> str:
    import keras
    import numpy as np
    import tensorflow as tf

    return (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"NumPy {np.__version__}, {platform.machine()} CPU"
    )


def write_card(
    path: Path, *, title: str, summary: str, facts: dict[str, str], sections: dict[str, str]
) -> Path:
    """A model card: title, summary, a facts table (`key` | value) and free sections.

    Tests read the facts table (`sha256`, `test_accuracy`, ...), so keep its keys stable.
    """
    from reuse.core.atomic import atomic_path

    lines = [f"# {title}", "", summary, "", "| Fact | Value |", "|---|---|"]
    lines += [f"| `{key}` | {value} |" for key, value in facts.items()]
    for heading, body in sections.items():
        lines += ["", f"## {heading}", "", body.strip()]
    lines.append("")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shipped_facts(path: Path, model) -> dict[str, str]:
    from reuse.core.reproducible import sha256_file

    return {
        "file": f"`{_shown(path)}`",
        "size_bytes": str(path.stat().st_size),
        "sha256": sha256_file(path),
        "weights_sha256": weights_sha256(path),
        "parameters": str(model.count_params()),
    }


DETERMINISM_NOTE = """\
The script seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed({seed})`), turns on
`tf.config.experimental.enable_op_determinism()` and uses a fixed data split, so two runs on
the same machine with the same library versions give bit-identical weights. Keras stamps a
`.keras` archive with the time it was saved (zip member times and `date_saved` in
`metadata.json`); the script rewrites the archive with fixed timestamps
(`reuse.core.reproducible.normalize_keras_archive`), so the file's sha256 is reproducible too.
Another CPU or other TensorFlow / NumPy versions may round differently and give different
(equally good) weights: compare `weights_sha256` and the accuracy, not only the file hash.
The shipped file holds no optimizer state; load it with `reuse.load_model` (uncompiled)."""
