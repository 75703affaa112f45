"""Issue 21 on the MNIST 5-9 task (bench/bench_mnist_augment.py): LoRA adapters against gradual
unfreezing, mixed precision on CPU, and float16 feature caches.

Base: models/mnist_0to4.keras (hidden1..hidden5, 100 ELU units each, trained on digits 0-4);
100 training and 30 validation images per digit 5-9, test on all 4,861 test digits 5-9.
Rows (mean ± std of test accuracy over seeds 1-3, `REUSE_BENCH_SEEDS` to change), each with
the parameters it trains and its wall time (model load to trained model, data in memory):
- `--unfreeze gradual` (the default recipe, issue 14);
- `--lora 4` and `--lora 8` on the top two reused layers (`--lora-layers 'hidden[45]'`), from
  the raw images, at the default lr (1e-3) and at 0.01; rank 8 on all five hidden layers at
  0.01; rank 8 from a feature cache at hidden3 (layers below the adapters run once, at
  caching time);
- rank 8 with `--mixed-precision bfloat16` and `float16` (CPU: expect no speed-up);
- gradual unfreezing from a cache at every hidden layer stored as float32 and as float16
  (`cache-features --dtype float16`): accuracy, seconds per epoch, file size;
- timing in one run (`epoch_times`): seconds per epoch after the first, float32 vs bfloat16
  vs float16, and seconds to read the cache, float32 vs float16, as ratios;
- `reuse quantize` of the base on its own task (test digits 0-4): size and accuracy.

Skipped without MNIST. Run alone: `python bench/run.py mnist_lora` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_mnist_augment as task  # noqa: E402

SEEDS = tuple(int(s) for s in os.environ.get("REUSE_BENCH_SEEDS", "1,2,3").split(","))
TOP = "hidden[45]"


def _run(train, val, test, seed, *, features=None, **options):
    """(accuracy, seconds, seconds per epoch, trained params) of one finetune."""
    import reference_keras

    from reuse.formats.model_io import load_model
    from reuse.training.finetune import finetune

    xs, ys = task.flat(test)
    started = time.perf_counter()
    result = finetune(
        load_model(task.MODEL), train, val=val, features=features, seed=seed, **options
    )
    seconds = time.perf_counter() - started
    train_seconds = sum(s.seconds for s in result.stages)
    params = max(s.params or 0 for s in result.stages)
    acc = reference_keras.accuracy(result.model, xs, ys)
    return acc, seconds, train_seconds / max(1, len(result.history)), params


def _cache(train, seed, tmp: Path, taps, dtype="float32"):
    from reuse.cache import cache_features
    from reuse.formats.model_io import load_model

    out = tmp / f"c{seed}_{'_'.join(taps)}_{dtype}.h5"
    started = time.perf_counter()
    cache_features(load_model(task.MODEL), train, out, taps=taps, dtype=dtype, verify=0)
    return out, time.perf_counter() - started, out.stat().st_size


def experiment(seed: int, tmp: Path) -> dict:
    train, val, test = task.task_data(seed)
    out = {}
    out["finetune --unfreeze gradual"] = _run(train, val, test, seed, unfreeze="gradual")
    for rank in (4, 8):
        out[f"finetune --lora {rank} --lora-layers '{TOP}'"] = _run(
            train, val, test, seed, lora=rank, lora_layers=TOP
        )
    out[f"finetune --lora 8 --lora-layers '{TOP}' --lr 0.01"] = _run(
        train, val, test, seed, lora=8, lora_layers=TOP, lr=0.01
    )
    out["finetune --lora 8 --lr 0.01 (all five hidden layers)"] = _run(
        train, val, test, seed, lora=8, lr=0.01
    )
    cache, cache_s, _ = _cache(train, seed, tmp, ["hidden3"])
    acc, s, per_epoch, params = _run(
        train, val, test, seed, features=cache, lora=8, lora_layers=TOP
    )
    out[f"finetune --lora 8 --lora-layers '{TOP}', from a cache at hidden3"] = (
        acc,
        s + cache_s,
        per_epoch,
        params,
    )
    for precision in ("bfloat16", "float16"):
        out[f"finetune --lora 8 --lora-layers '{TOP}' --mixed-precision {precision}"] = _run(
            train, val, test, seed, lora=8, lora_layers=TOP, mixed_precision=precision
        )
    taps = [f"hidden{i}" for i in range(1, 6)]
    for dtype in ("float32", "float16"):
        cache, cache_s, size = _cache(train, seed, tmp, taps, dtype)
        acc, s, per_epoch, params = _run(train, val, test, seed, features=cache, unfreeze="gradual")
        out[f"finetune --unfreeze gradual from a {dtype} cache ({size / 1e6:.2f} MB)"] = (
            acc,
            s + cache_s,
            per_epoch,
            params,
        )
    return out


def epoch_times(seed: int, tmp: Path, epochs: int = 12) -> dict:
    """Seconds per epoch after the first (no tracing), median over `epochs`, of rank-8 LoRA on
    every hidden layer from the raw images, in float32, bfloat16 and float16; and the seconds
    to read a cache at every hidden layer stored as float32 and as float16 (median of 5)."""
    from reuse.cache import open_cache
    from reuse.formats.model_io import load_model
    from reuse.training.finetune import finetune

    train, val, _ = task.task_data(seed)
    out = {}
    for precision in (None, "bfloat16", "float16"):
        result = finetune(
            load_model(task.MODEL),
            train,
            val=val,
            seed=seed,
            lora=8,
            lr=0.01,
            epochs=epochs,
            mixed_precision=precision,
        )
        marks = [row["seconds"] for row in result.history]
        out[f"epoch, LoRA 8 on all hidden layers, {precision or 'float32'}"] = float(
            np.median(np.diff(marks))
        )
    taps = [f"hidden{i}" for i in range(1, 6)]
    for dtype in ("float32", "float16"):
        path, _, _ = _cache(train, seed, tmp, taps, dtype)
        reads = []
        for _ in range(5):
            started = time.perf_counter()
            with open_cache(path) as cache:
                for tap in taps:
                    cache.array(tap)
            reads.append(time.perf_counter() - started)
        out[f"reading a {dtype} cache of the 5 hidden layers"] = float(np.median(reads))
    return out


def quantize_rows(tmp: Path) -> list[dict]:
    """`reuse quantize` of the base model on its own task (test digits 0-4): file size and
    accuracy before and after int8."""
    from reuse.data.dataset import load_data
    from reuse.formats.model_io import load_model
    from reuse.inference.quantize import quantize_model

    test = load_data(task.MNIST, split="test", classes="0-4")
    result = quantize_model(load_model(task.MODEL), tmp / "q.keras", source=task.MODEL, data=test)
    name = "MNIST 0-4 (issue 21), reuse quantize models/mnist_0to4.keras"
    return [
        {
            "name": f"{name}: file size",
            "value": result.bytes_after,
            "unit": "bytes",
            "ratio": result.bytes_after / result.bytes_before,
        },
        {"name": f"{name}: test accuracy before", "value": result.before.accuracy, "unit": "acc"},
        {"name": f"{name}: test accuracy after", "value": result.after.accuracy, "unit": "acc"},
    ]


def run() -> list[dict]:
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not task.have_mnist():
        return [{"name": "MNIST 5-9 LoRA (test accuracy)", "skipped": f"no MNIST at {task.MNIST}"}]
    from reuse.core import report

    runs = []
    only_timing = os.environ.get("REUSE_BENCH_LORA_TIMING_ONLY")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in () if only_timing else SEEDS:
            runs.append(experiment(seed, Path(tmp)))
            for name, (acc, s, per_epoch, params) in runs[-1].items():
                report.info(
                    f"seed {seed}: {name}: test accuracy {acc:.4f}, {s:.1f} s, "
                    f"{per_epoch * 1000:.0f} ms/epoch, {params:,} params"
                )
    with tempfile.TemporaryDirectory() as tmp:
        timing = epoch_times(SEEDS[0], Path(tmp))
        rows = quantize_rows(Path(tmp))
    base = {
        "epoch": "epoch, LoRA 8 on all hidden layers, float32",
        "reading": "reading a float32 cache of the 5 hidden layers",
    }
    for name, seconds in timing.items():
        ref = timing[base["epoch" if name.startswith("epoch") else "reading"]]
        rows.append(
            {
                "name": f"MNIST 5-9 (issue 21), seconds per {name}",
                "value": seconds,
                "unit": "s",
                "ratio": seconds / ref,
            }
        )
        report.info(f"{name}: {seconds * 1000:.1f} ms ({seconds / ref:.2f}x float32)")
    for name in runs[0] if runs else ():
        accs, secs, epoch_s = (np.array([r[name][i] for r in runs]) for i in range(3))
        rows.append(
            {
                "name": f"MNIST 5-9 (issue 21), {name}: test accuracy",
                "value": float(accs.mean()),
                "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                "unit": "acc",
                "per_seed": [round(float(a), 4) for a in accs],
                "seconds": float(secs.mean()),
                "seconds_per_epoch": float(epoch_s.mean()),
                "params": int(runs[0][name][3]),
            }
        )
        rows.append(
            {
                "name": f"MNIST 5-9 (issue 21), {name}: wall time",
                "value": float(secs.mean()),
                "unit": "s",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
