"""One training epoch from the feature cache vs. one epoch through the frozen layers.

Targets (issue 5, and issue 14 for augmented views): on the MNIST 5x100 ELU network (models/mnist_0to4.keras, every hidden layer
frozen, `--head auto`) at batch 256 over 60,000 rows, the cached epoch is at least 4x faster;
on a conv base (three frozen Conv2D layers 32/64/64 on 28x28x1 with pooling), at least 10x.

Both paths are the library's own: `reuse.training.finetune.run_stage` with a StagePlan whose tap is the
cut (features from `reuse.cache.cache_features`, read back by `open_cache`) against the
same StagePlan with tap None (raw inputs through the frozen layers). Each run trains 2 epochs
and the second epoch is timed (a callback), so tracing and compiling are excluded. The rows are
the 60,000 MNIST training images when ../shared/data/mnist (or $REUSE_MNIST) exists, else
60,000 random rows of 784 floats in [0, 1) (the speed does not depend on the values).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MNIST = Path(os.environ.get("REUSE_MNIST", ROOT.parent / "shared" / "data" / "mnist"))
ROWS, BATCH, REPEATS = 60_000, 256, 3


def _data(tmp: Path):
    """(Dataset of 60,000 rows of 28x28 inputs, description)."""
    from reuse.data.dataset import load_data

    if (MNIST / "train-images-idx3-ubyte.gz").exists() or (
        MNIST / "train-images-idx3-ubyte"
    ).exists():
        return load_data(MNIST, split="train"), "MNIST train (60,000 images)"
    rng = np.random.default_rng(0)
    path = tmp / "synthetic.npz"
    np.savez(path, x=rng.random((ROWS, 28, 28), dtype=np.float32), y=rng.integers(0, 10, ROWS))
    return load_data(path), "60,000 random 28x28 float rows (MNIST absent)"


def _conv_base():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1), name="pixels")
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", padding="same", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", padding="same", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="conv3")


class _EpochTimer:
    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t)

        return Timer()


def _epoch_seconds(transfer, inputs, tap: str | None, seed: int, **augment) -> float:
    """Seconds of the second epoch of a 2-epoch stage (the first one traces and warms up)."""
    from reuse.training.options import FinetuneOptions
    from reuse.training.stage import StagePlan, run_stage

    options = FinetuneOptions(epochs=2, batch_size=BATCH, seed=seed, **augment)
    timer = _EpochTimer()
    run_stage(transfer, StagePlan(0, [], 1e-3, tap), inputs, options, [], callbacks=[timer])
    return timer.seconds[-1]


def _compare(label: str, base, data, tmp: Path, repeats: int = REPEATS) -> list[dict]:
    from reuse.cache import cache_features, open_cache
    from reuse.training.inputs import TrainingInputs
    from reuse.training.options import FinetuneOptions
    from reuse.training.transfer import apply_trainable, build_transfer_model

    shaped = data.reshape_for(base.inputs[0].shape)
    x, y = shaped.arrays()
    transfer = build_transfer_model(base, y, FinetuneOptions(head="auto", seed=0))
    apply_trainable(transfer, [])  # every reused layer frozen, as run_stage does for trainable=[]
    tap = transfer.cut
    cache_path = tmp / f"{label}.h5"
    started = time.perf_counter()
    cache_features(transfer.model, shaped, cache_path, taps=[tap], batch_size=BATCH, verify=0)
    cache_s = time.perf_counter() - started
    cache = open_cache(cache_path, model=transfer.model)
    try:
        cached_inputs = TrainingInputs(transfer, y=y, cache=cache)
        raw_inputs = TrainingInputs(transfer, x=x, y=y)
        # Alternate the two paths so that load from other processes hits both alike.
        cached, raw = [], []
        for i in range(repeats):
            cached.append(_epoch_seconds(transfer, cached_inputs, tap, seed=i))
            raw.append(_epoch_seconds(transfer, raw_inputs, None, seed=i))
    finally:
        cache.close()
    c, r = float(np.median(cached)), float(np.median(raw))
    target = {"mlp": ">= 4x", "conv": ">= 10x"}[label]
    what = {"mlp": "MNIST 5x100 ELU MLP", "conv": "conv base 32/64/64"}[label]
    return [
        {
            "name": f"finetune epoch from cache, {what} (batch 256, median of {repeats})",
            "value": c,
            "unit": "s",
            "ratio": r / c,
            "target": target,
        },
        {"name": f"finetune epoch through frozen layers, {what}", "value": r, "unit": "s"},
        {"name": f"cache-features once, {what} (tap {tap})", "value": cache_s, "unit": "s"},
    ]


AUGMENT, VIEWS, AUG_ROWS = "shift:0.08,rotate:0.04,zoom:0.08", 8, 6_000


def _compare_augmented(label: str, base, data, tmp: Path) -> list[dict]:
    """An epoch from a cache of K augmented views against an epoch that augments every batch
    on the fly and runs it through the frozen layers (issue 14), on the first 6,000 rows."""
    from reuse.cache import cache_features, open_cache
    from reuse.training.inputs import TrainingInputs
    from reuse.training.options import FinetuneOptions
    from reuse.training.transfer import apply_trainable, build_transfer_model

    shaped = data.reshape_for(base.inputs[0].shape).subset(np.arange(AUG_ROWS), "first6000")
    x, y = shaped.arrays()
    image_shape = (28, 28, 1) if len(x.shape) == 2 else None
    augment = {"augment": AUGMENT, "image_shape": image_shape}
    transfer = build_transfer_model(base, y, FinetuneOptions(head="auto", seed=0))
    apply_trainable(transfer, [])
    tap = transfer.cut
    cache_path = tmp / f"{label}-views.h5"
    started = time.perf_counter()
    cache_features(
        transfer.model,
        shaped,
        cache_path,
        taps=[tap],
        batch_size=BATCH,
        verify=0,
        augment=AUGMENT,
        views=VIEWS,
        image_shape=image_shape,
    )
    cache_s = time.perf_counter() - started
    cache = open_cache(cache_path, model=transfer.model)
    try:
        viewed = _epoch_seconds(
            transfer, TrainingInputs(transfer, y=y, cache=cache), tap, 0, **augment
        )
        live = _epoch_seconds(transfer, TrainingInputs(transfer, x=x, y=y), None, 0, **augment)
    finally:
        cache.close()
    target = {"mlp": "", "conv": ">= 10x"}[label]
    what = {"mlp": "MNIST 5x100 ELU MLP", "conv": "conv base 32/64/64"}[label]
    return [
        {
            "name": f"augmented epoch from {VIEWS} cached views, {what} ({AUG_ROWS:,} rows, batch 256)",
            "value": viewed,
            "unit": "s",
            "ratio": live / viewed,
            "target": target,
        },
        {
            "name": f"augmented epoch on the fly through frozen layers, {what}",
            "value": live,
            "unit": "s",
        },
        {"name": f"cache-features with {VIEWS} views once, {what}", "value": cache_s, "unit": "s"},
    ]


def run() -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from reuse.core import report
    from reuse.formats.model_io import load_model

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, description = _data(tmp)
        report.info(f"bench_finetune: rows = {description}")
        rows += _compare("mlp", load_model(ROOT / "models" / "mnist_0to4.keras"), data, tmp)
        rows += _compare("conv", _conv_base(), data, tmp, repeats=1)  # ~30 s per raw epoch
        rows += _compare_augmented(
            "mlp", load_model(ROOT / "models" / "mnist_0to4.keras"), data, tmp
        )
        rows += _compare_augmented("conv", _conv_base(), data, tmp)
    for row in rows:
        row["data"] = description
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
