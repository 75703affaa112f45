"""Issue 18: pretraining a base on MNIST when no pretrained model fits, against training from
scratch; mean ± std of test accuracy over seeds.

The splits follow Géron's ch. 11 exercise 10: split #1 = MNIST training images 0..54,999 (the
plentiful data, whose labels serve only as cheap "same digit?" labels or not at all), split
#2 = images 55,000..59,999 (the few labelled images); test = the 10,000 t10k images.

1. **Pairs** (ex. 10): a siamese network whose tower is 5 Dense(100, elu, he_normal) layers
   (`reuse.pretrain.pairs.pretrain_pairs`, `combine="concat"`, then Dense(10, elu) and one
   sigmoid), trained on `PAIRS` balanced "same digit?" pairs drawn from split #1 (10% of its
   rows held out for validation pairs), `PAIR_EPOCHS` epochs, batch 128, Adam 1e-3. Then
   `reuse.finetune` of the tower, frozen (`reuse.freeze(all=True)`), with a softmax head on the
   5,000 images of split #2 (about 500 per digit; 10% of them hold out for early stopping),
   as the book does, and with gradual unfreezing (`unfreeze="gradual"`), against the same
   network (5 x 100 + softmax) trained from scratch on the same images with the same options
   (`unfreeze="all"`). The book reports 96.54% for the reused tower against
   94.58% from scratch; its pair training saw about 5.5 million pairs (100 epochs x 110
   batches of 500), scaled down here to fit 2 shared CPU cores (`PAIRS` x `PAIR_EPOCHS`).
2. **Autoencoder**: an autoencoder 784-300-150-300-784 (`reuse.pretrain.autoencoder`, end-to-
   end, stacked, and end-to-end denoising with dropout 0.5 on the inputs) on the images of
   split #1, labels ignored, `AE_EPOCHS` epochs, batch 128 ($REUSE_BENCH_AE_VARIANTS picks).
   Then its encoder + softmax on 100 images per digit from split #2 (30 more per digit for
   early stopping): fine-tuned with gradual unfreezing, with every layer trained at once, or
   frozen (the head alone trains); against the same network (300-150 + softmax) trained from
   scratch.

Every fine-tuning run is `reuse.finetune` with its defaults (Adam 1e-3, up to 100 epochs, early
stopping with patience 5 and the best weights restored, batch 32). Skipped when MNIST is
absent (../shared/data/mnist or $REUSE_MNIST). Seeds: $REUSE_BENCH_SEEDS (default 1,2,3).
Run alone: `python bench/run.py pretrain` (about 30-40 minutes on 2 shared cores;
$REUSE_BENCH_PRETRAIN=pairs or autoencoder runs one part, $REUSE_BENCH_PAIRS,
$REUSE_BENCH_PAIR_EPOCHS and $REUSE_BENCH_AE_EPOCHS scale them).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
MNIST = Path(os.environ.get("REUSE_MNIST", ROOT.parent / "shared" / "data" / "mnist"))
SEEDS = tuple(int(s) for s in os.environ.get("REUSE_BENCH_SEEDS", "1,2,3").split(","))
SPLIT = 55_000
PAIRS = int(os.environ.get("REUSE_BENCH_PAIRS", "200000"))
PAIR_EPOCHS = int(os.environ.get("REUSE_BENCH_PAIR_EPOCHS", "10"))
AE_EPOCHS = int(os.environ.get("REUSE_BENCH_AE_EPOCHS", "10"))
PARTS = [p for p in os.environ.get("REUSE_BENCH_PRETRAIN", "pairs,autoencoder").split(",") if p]
AE_VARIANTS = {
    "end-to-end": {"mode": "end-to-end"},
    "stacked": {"mode": "stacked"},
    "denoising (input dropout 0.5)": {"mode": "end-to-end", "dropout": 0.5},
}
AE_RUN = [
    v for v in os.environ.get("REUSE_BENCH_AE_VARIANTS", ",".join(AE_VARIANTS)).split(",") if v
]
TOWER = (100, 100, 100, 100, 100)
AE_LAYERS = (300, 150)


def have_mnist() -> bool:
    return any((MNIST / f"train-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz"))


def splits():
    """(x1, y1) split #1, (x2, y2) split #2, (xt, yt) test: flat float rows in [0, 1]."""
    from reuse.data.dataset import load_data

    train = load_data(MNIST, split="train")
    test = load_data(MNIST, split="test")
    x, y = train.arrays()
    xt, yt = test.arrays()
    x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    return (x[:SPLIT], y[:SPLIT]), (x[SPLIT:], y[SPLIT:]), (xt, yt)


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=2048, verbose=0), axis=1) == y))


def fresh(layers, seed: int):
    """The same Dense stack as a pretrained base, randomly initialized (He normal)."""
    import keras

    from reuse.pretrain.encoder import build_encoder, encoder_blocks
    from reuse.pretrain.options import PretrainOptions

    keras.utils.set_random_seed(seed)
    options = PretrainOptions(layers=layers).check()
    return build_encoder(encoder_blocks(options, (784,), "dense"), (784,), name="scratch")


def classify(base, train, val, test, *, how: str, seed: int) -> tuple[float, int]:
    """Test accuracy and epochs of `reuse.finetune` of `base` + softmax, every other option at
    its default. `how`: "frozen" (the base frozen, the head alone trains), "all" (every layer
    trains) or "gradual" (`unfreeze="gradual"`: the head, then the base from the top)."""
    import reuse

    if how == "frozen":
        reuse.freeze(base, all=True)
    result = reuse.finetune(
        base,
        train,
        val=val,
        cut=base.layers[-1].name,
        unfreeze="none" if how == "frozen" else how,
        seed=seed,
    )
    return accuracy(result.model, *test), len(result.history)


def pairs_experiment(seed: int, data) -> dict:
    from reuse.core.report import info
    from reuse.pretrain.pairs import pretrain_pairs

    (x1, y1), (x2, y2), test = data
    rng = np.random.default_rng(seed)
    held = rng.permutation(len(x2))
    n_val = len(x2) // 10
    train, val = (x2[held[n_val:]], y2[held[n_val:]]), (x2[held[:n_val]], y2[held[:n_val]])
    out = {}
    started = time.perf_counter()
    pretrained = pretrain_pairs(
        (x1, y1),
        layers=TOWER,
        pairs=PAIRS,
        epochs=PAIR_EPOCHS,
        batch_size=128,
        val_split=0.1,
        seed=seed,
    )
    pair_seconds = time.perf_counter() - started
    info(f"seed {seed}: pairs pretraining {pair_seconds:.0f} s, {pretrained.metrics}")
    out["pairs: siamese val accuracy (same digit?)"] = (
        pretrained.metrics.get("val_accuracy", np.nan),
        pair_seconds,
        PAIR_EPOCHS,
    )
    weights = pretrained.base.get_weights()
    for name, how in (
        ("pairs: reused tower + softmax, gradual unfreezing, 500/digit", "gradual"),
        ("pairs: reused tower (frozen) + softmax, 500/digit", "frozen"),  # the book's
        ("pairs: same network from scratch, 500/digit", "scratch"),
    ):
        base = fresh(TOWER, seed)
        if how != "scratch":
            base.set_weights(weights)
        started = time.perf_counter()
        acc, epochs = classify(
            base, train, val, test, how="all" if how == "scratch" else how, seed=seed
        )
        out[name] = (acc, time.perf_counter() - started, epochs)
    return out


def autoencoder_experiment(seed: int, data) -> dict:
    from reuse.core.report import info
    from reuse.pretrain.autoencoder import pretrain_autoencoder

    (x1, _), (x2, y2), test = data
    rng = np.random.default_rng(seed)
    train_rows, val_rows = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(y2 == digit))
        train_rows.append(rows[:100])
        val_rows.append(rows[100:130])
    train_rows, val_rows = np.concatenate(train_rows), np.concatenate(val_rows)
    train, val = (x2[train_rows], y2[train_rows]), (x2[val_rows], y2[val_rows])
    out = {}
    for mode in AE_RUN:
        started = time.perf_counter()
        pretrained = pretrain_autoencoder(
            x1, layers=AE_LAYERS, epochs=AE_EPOCHS, batch_size=128, seed=seed, **AE_VARIANTS[mode]
        )
        seconds = time.perf_counter() - started
        info(f"seed {seed}: autoencoder ({mode}) {seconds:.0f} s, {pretrained.metrics}")
        weights = pretrained.base.get_weights()
        for how, what in (
            ("gradual", "gradual unfreezing"),
            ("all", "every layer fine-tuned"),
            ("frozen", "frozen"),
        ):
            base = fresh(AE_LAYERS, seed)
            base.set_weights(weights)
            started = time.perf_counter()
            acc, epochs = classify(base, train, val, test, how=how, seed=seed)
            out[f"autoencoder ({mode}) + softmax, {what}, 100/digit"] = (
                acc,
                time.perf_counter() - started,
                epochs,
            )
    started = time.perf_counter()
    acc, epochs = classify(fresh(AE_LAYERS, seed), train, val, test, how="all", seed=seed)
    out["autoencoder: same network from scratch, 100/digit"] = (
        acc,
        time.perf_counter() - started,
        epochs,
    )
    return out


def run() -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not have_mnist():
        return [{"name": "MNIST pretraining (issue 18)", "skipped": f"no MNIST at {MNIST}"}]
    from reuse.core import report

    data = splits()
    runs = []
    for seed in SEEDS:
        results = {}
        if "pairs" in PARTS:
            results.update(pairs_experiment(seed, data))
        if "autoencoder" in PARTS:
            results.update(autoencoder_experiment(seed, data))
        for name, (acc, secs, epochs) in results.items():
            report.info(f"seed {seed}: {name}: {acc:.4f} ({secs:.0f} s, {epochs} epochs)")
        runs.append(results)
    rows = []
    for name in runs[0]:
        accs = np.array([r[name][0] for r in runs])
        rows.append(
            {
                "name": f"MNIST pretrain (issue 18), {name}: test accuracy"
                if "siamese" not in name
                else f"MNIST pretrain (issue 18), {name}",
                "value": float(accs.mean()),
                "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                "unit": "acc",
                "per_seed": [round(float(a), 4) for a in accs],
                "epochs": [int(r[name][2]) for r in runs],
                "seconds": float(np.mean([r[name][1] for r in runs])),
                "settings": {"pairs": PAIRS, "pair_epochs": PAIR_EPOCHS, "ae_epochs": AE_EPOCHS},
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
