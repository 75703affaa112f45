"""Issue 17's measurement: `reuse tune` on the MNIST 5-9 task against `finetune` with defaults.

The task (bench_mnist_transfer.py): reuse models/mnist_0to4.keras (5 hidden layers of 100 ELU
units, trained on digits 0-4), every layer frozen as `reuse freeze --all` leaves it, for digits
5-9 with 100 training images per digit; validation: the digits 5-9 among the first 5,000
training images (2,442); test: every digit 5-9 of the t10k set (4,861), used only after the
search, to score the configuration it chose.

Per seed (`REUSE_BENCH_SEEDS`, default 0,1,2):
- `finetune` with defaults (head auto, Adam at 1e-3, up to 100 epochs, early stopping 5);
- `tune` (TRIALS coarse trials of 3 epochs over lr around the lr-find suggestion, weight decay
  1e-4/1e-5/0 and the number of unfrozen top layers 0/1/2, median pruning; the best 3 trained
  for up to 20 epochs), then `finetune` with its best.json; the search's wall time.
Once (seed 0): the same search by 1 process and by 2 processes sharing one SQLite study
(`reuse tune` as real processes), wall time of each.

Skipped when MNIST is absent (../shared/data/mnist or $REUSE_MNIST).
Run alone: `python bench/run.py tune` (about 10-20 minutes on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
SEEDS = tuple(int(s) for s in os.environ.get("REUSE_BENCH_SEEDS", "0,1,2").split(","))
TRIALS = int(os.environ.get("REUSE_BENCH_TUNE_TRIALS", "16"))
SPACE = ("unfreeze=0,1,2",)


def _frozen_model(folder: Path) -> Path:
    from bench_mnist_transfer import MODEL

    from reuse.formats.model_io import load_model, save_model

    model = load_model(MODEL)
    for layer in model.layers:
        layer.trainable = False
    path = folder / "mnist_0to4.frozen.keras"
    save_model(model, path)
    return path


def _options(seed: int, storage: str):
    from reuse.tune.search import TuneOptions

    return TuneOptions(trials=TRIALS, seed=seed, space=SPACE, storage=storage)


def experiment(seed: int, folder: Path, frozen: Path) -> dict:
    from bench_mnist_transfer import _flat, accuracy, task_data

    from reuse.core import report
    from reuse.formats.model_io import load_model
    from reuse.training.finetune import finetune
    from reuse.tune.search import tune

    train, val, test = task_data(seed)
    xs, ys = _flat(test)
    started = time.perf_counter()
    default = finetune(load_model(frozen), train, val=val, seed=seed)
    default_s = time.perf_counter() - started
    default_acc = accuracy(default.model, xs, ys)
    started = time.perf_counter()
    result = tune(
        frozen,
        train,
        val,
        output=folder / f"best{seed}.json",
        options=_options(seed, f"sqlite:///{folder / f'seed{seed}.db'}"),
    )
    search_s = time.perf_counter() - started
    result.write(folder / f"best{seed}.json")
    started = time.perf_counter()
    tuned = finetune(load_model(frozen), train, val=val, seed=seed, **result.config)
    tuned_s = time.perf_counter() - started
    tuned_acc = accuracy(tuned.model, xs, ys)
    report.info(
        f"seed {seed}: default {default_acc:.4f} ({default_s:.0f} s); tuned {tuned_acc:.4f} "
        f"(search {search_s:.0f} s, final run {tuned_s:.0f} s); best {result.config}"
    )
    return {
        "default": default_acc,
        "tuned": tuned_acc,
        "search_s": search_s,
        "default_s": default_s,
        "config": result.config,
        "trials": len(result.rows),
        "pruned": sum(r.state == "pruned" for r in result.rows),
    }


def processes(folder: Path, frozen: Path) -> dict:
    """Wall time of one search by 1 process and by 2 processes sharing a SQLite study."""
    from bench_mnist_transfer import _flat, task_data

    train, val, _ = task_data(0)
    for name, ds in (("train", train), ("val", val)):
        x, y = _flat(ds)
        np.savez(folder / f"{name}.npz", x=x, y=y)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    out = {}
    for n in (1, 2):
        db = folder / f"procs{n}.db"
        command = [
            sys.executable, "-m", "reuse", "-q", "tune", str(frozen),
            "--data", str(folder / "train.npz"), "--val", str(folder / "val.npz"),
            "--trials", str(TRIALS), "--seed", "0", "--storage", f"sqlite:///{db}",
            *[a for item in SPACE for a in ("--space", item)], "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        runs = [
            subprocess.Popen(
                [*command, "-o", str(folder / f"procs{n}-{i}.json")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        results = [r.communicate() for r in runs]
        for run, (_, err) in zip(runs, results, strict=True):
            if run.returncode:
                raise RuntimeError(err[-2000:])
        out[n] = time.perf_counter() - started
        out[f"value{n}"] = json.loads(results[0][0].splitlines()[-1])["value"]
    return out


def run() -> list[dict]:
    from bench_mnist_transfer import MNIST, have_mnist

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not have_mnist():
        return [{"name": "MNIST 5-9 tune (test accuracy)", "skipped": f"no MNIST at {MNIST}"}]
    try:
        import optuna  # noqa: F401
    except ImportError:
        return [{"name": "MNIST 5-9 tune", "skipped": "optuna not installed (keras-reuse[tune])"}]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frozen = _frozen_model(folder)
        runs = [experiment(seed, folder, frozen) for seed in SEEDS]
        procs = (
            processes(folder, frozen)
            if os.environ.get("REUSE_BENCH_TUNE_PROCS", "1") != "0"
            else None
        )
    rows = []
    for key, name in (
        ("default", "finetune with defaults"),
        ("tuned", f"tune ({TRIALS} trials) + finetune --config best.json"),
    ):
        accs = np.array([r[key] for r in runs])
        rows.append(
            {
                "name": f"MNIST 5-9, {name}: test accuracy (mean ± std of {len(runs)} seeds)",
                "value": float(accs.mean()),
                "std": float(accs.std()),
                "unit": "acc",
                "per_seed": [round(float(a), 4) for a in accs],
            }
        )
    gain = np.array([r["tuned"] - r["default"] for r in runs])
    rows[-1]["tuned_minus_default"] = float(gain.mean())
    rows[-1]["tuned_wins_seeds"] = f"{int((gain > 0).sum())}/{len(runs)}"
    rows[-1]["configs"] = [r["config"] for r in runs]
    rows[-1]["pruned"] = [f"{r['pruned']}/{r['trials']}" for r in runs]
    secs = np.array([r["search_s"] for r in runs])
    rows.append(
        {
            "name": f"MNIST 5-9, tune search wall time ({TRIALS} coarse + 3 fine trials)",
            "value": float(secs.mean()),
            "std": float(secs.std()),
            "unit": "s",
            "default_finetune_s": float(np.mean([r["default_s"] for r in runs])),
        }
    )
    if procs is not None:
        rows.append(
            {
                "name": "MNIST 5-9, tune wall time, 2 processes on one study vs 1",
                "value": procs[2],
                "unit": "s",
                "ratio": procs[1] / procs[2],
                "one_process_s": procs[1],
                "best_value": [procs["value1"], procs["value2"]],
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
