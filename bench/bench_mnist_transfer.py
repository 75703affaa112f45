"""The MNIST 5-9 transfer task: `reuse.finetune` with defaults against a hand-written Keras script.

The task (issues 5 and 6): reuse models/mnist_0to4.keras (5 hidden layers of 100 ELU units,
trained on digits 0-4) for digits 5-9 with 100 training images per digit.

- training: 100 images of each digit 5-9, drawn with a seeded shuffle from training images
  5,000..59,999 (the first 5,000 are the validation set, as when the base model was made);
- validation: the digits 5-9 among the first 5,000 training images (2,442 images);
- test: every digit 5-9 of the t10k set (4,861 images).

Compared, with the same data and seed:

- `reuse.finetune(..., unfreeze="gradual")` with every other option at its default;
- `reuse.finetune(...)` with every option at its default (`unfreeze="none"`: the issue-5
  accuracy figure, reused layers frozen, `--head auto`, Adam);
- a hand-written Keras script, as a careful user writes it: load the model, drop the output
  layer, freeze the reused layers, add Dense(5, softmax), train with Adam (lr 1e-3) and
  EarlyStopping(patience=5, restore_best_weights=True) for up to 100 epochs (step 1); then
  unfreeze every reused layer, recompile with Adam(1e-4) and train again the same way (step 2).

Each variant's wall time runs from loading the model to the trained model (data already in
memory). Rows are skipped when MNIST is absent (../shared/data/mnist or $REUSE_MNIST).
Run alone: `python bench/run.py mnist_transfer` (about 2-4 minutes on 2 cores for 3 seeds).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MNIST = Path(os.environ.get("REUSE_MNIST", ROOT.parent / "shared" / "data" / "mnist"))
MODEL = ROOT / "models" / "mnist_0to4.keras"
SEEDS = tuple(int(s) for s in os.environ.get("REUSE_BENCH_SEEDS", "0,1,2").split(","))
N_VALID, PER_CLASS = 5000, 100
HAND_PATIENCE, HAND_EPOCHS, HAND_LR2 = 5, 100, 1e-4


def have_mnist() -> bool:
    return any((MNIST / f"train-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz"))


def task_data(seed: int):
    """(train, val, test) Datasets of digits 5-9 (labels remapped to 0-4)."""
    from reuse.data.dataset import load_data

    pool = load_data(MNIST, split="train", classes="5-9")
    val = pool.subset(np.flatnonzero(pool.indices < N_VALID), f"first{N_VALID}")
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(5):
        candidates = np.flatnonzero((pool.y == label) & (pool.indices >= N_VALID))
        picks.append(rng.choice(candidates, PER_CLASS, replace=False))
    train = pool.subset(
        np.sort(np.concatenate(picks)), f"per_class{PER_CLASS}:seed{seed}:from{N_VALID}"
    )
    test = load_data(MNIST, split="test", classes="5-9")
    return train, val, test


def _flat(ds) -> tuple[np.ndarray, np.ndarray]:
    x, y = ds.arrays()
    return x.reshape(len(x), -1), y


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), axis=1) == y))


def hand_script(train, val, test, seed: int) -> dict:
    """What a careful Keras user writes by hand (see the module doc)."""
    import keras

    (xt, yt), (xv, yv), (xs, ys) = _flat(train), _flat(val), _flat(test)
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    base = keras.models.load_model(MODEL)
    features = base.layers[-2].output
    output = keras.layers.Dense(5, activation="softmax", name="new_output")(features)
    model = keras.Model(base.inputs, output)
    for layer in model.layers[:-1]:
        layer.trainable = False

    def fit(lr: float) -> int:
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        stop = keras.callbacks.EarlyStopping(patience=HAND_PATIENCE, restore_best_weights=True)
        h = model.fit(
            xt, yt, epochs=HAND_EPOCHS, validation_data=(xv, yv), callbacks=[stop], verbose=0
        )
        return len(h.history["loss"])

    epochs1 = fit(1e-3)
    step1_s = time.perf_counter() - started
    acc1 = accuracy(model, xs, ys)
    started = time.perf_counter()
    for layer in model.layers[:-1]:
        layer.trainable = True
    epochs2 = fit(HAND_LR2)
    step2_s = time.perf_counter() - started
    acc2 = accuracy(model, xs, ys)
    return {
        "hand step 1 (frozen, Adam 1e-3)": (acc1, step1_s, epochs1),
        "hand step 2 (+ unfreeze all, Adam 1e-4)": (acc2, step1_s + step2_s, epochs2),
    }


def reuse_variant(
    train, val, test, seed: int, *, frozen: bool = False, **options
) -> tuple[float, float, int, list]:
    """`frozen`: freeze every layer first, as `reuse freeze` does (the shipped model is trainable,
    and `unfreeze="none"` keeps each reused layer's own state)."""
    from reuse.formats.model_io import load_model
    from reuse.training.finetune import finetune

    xs, ys = _flat(test)
    started = time.perf_counter()
    model = load_model(MODEL)
    if frozen:
        for layer in model.layers:
            layer.trainable = False
    result = finetune(model, train, val=val, seed=seed, **options)
    seconds = time.perf_counter() - started
    epochs = len(result.history)
    return accuracy(result.model, xs, ys), seconds, epochs, [s.row() for s in result.stages]


def experiment(seed: int) -> dict:
    train, val, test = task_data(seed)
    out = {}
    acc, s, e, stages = reuse_variant(train, val, test, seed, unfreeze="gradual")
    out["reuse finetune --unfreeze gradual (defaults)"] = (acc, s, e)
    out["_stages"] = stages
    acc, s, e, _ = reuse_variant(train, val, test, seed, frozen=True)
    out["reuse freeze + finetune (defaults: head auto, Adam)"] = (acc, s, e)
    out.update(hand_script(train, val, test, seed))
    return out


def run() -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not have_mnist():
        return [{"name": "MNIST 5-9 transfer (test accuracy)", "skipped": f"no MNIST at {MNIST}"}]
    from reuse.core import report

    runs = []
    for seed in SEEDS:
        runs.append(experiment(seed))
        for name, (acc, s, e) in ((k, v) for k, v in runs[-1].items() if not k.startswith("_")):
            report.info(f"seed {seed}: {name}: test accuracy {acc:.4f}, {s:.1f} s, {e} epochs")
        for row in runs[-1]["_stages"]:
            report.info(
                f"  stage {row['stage']}: {row['trainable']}, {row['epochs']} epochs, best {row['best']:.4f}, kept {row['kept']}"
            )
    rows = []
    gradual = np.array([r["reuse finetune --unfreeze gradual (defaults)"][0] for r in runs])
    for name in [k for k in runs[0] if not k.startswith("_")]:
        accs = np.array([r[name][0] for r in runs])
        secs = np.array([r[name][1] for r in runs])
        row = {
            "name": f"MNIST 5-9, {name}: test accuracy (mean of {len(runs)} seeds)",
            "value": float(accs.mean()),
            "unit": "acc",
            "spread": [float(accs.min()), float(accs.max())],
            "per_seed": [round(float(a), 4) for a in accs],
            "seconds": float(secs.mean()),
            "epochs": [int(r[name][2]) for r in runs],
        }
        if name.startswith("hand"):
            row["gradual_minus_this"] = float((gradual - accs).mean())
            row["gradual_wins_seeds"] = f"{int((gradual > accs).sum())}/{len(runs)}"
        rows.append(row)
        rows.append(
            {
                "name": f"MNIST 5-9, {name}: wall time (mean)",
                "value": float(secs.mean()),
                "unit": "s",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
