"""Feature-cache benchmarks: throughput vs a bare forward pass, compression, peak RSS vs rows.

Targets (issue 4):
- `cache_features` throughput >= 0.9x a bare batched forward pass over the same layers that
  writes nothing (784->5x300 ELU MLP and a 3-conv net, 60,000 rows, same run);
- peak RSS with 600,000 rows read from a memory-mapped .npy grows by < 15% over 60,000 rows
  (each measured in a fresh subprocess: its VmHWM, because ru_maxrss inherits the parent's peak
  across fork+exec on Linux).

Run alone: `python bench/run.py cache`, or `python bench/bench_cache.py`.
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

ROOT = Path(__file__).resolve().parent.parent
ROWS = 60_000
BATCH = 256


def mlp():
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((784,))]
    layers += [keras.layers.Dense(300, activation="elu", name=f"hidden{i}") for i in range(1, 6)]
    layers += [keras.layers.Dense(10, activation="softmax", name="output")]
    model = keras.Sequential(layers, name="mlp_5x300")
    for layer in model.layers[:5]:
        layer.trainable = False
    return model


def convnet():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool2"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv3"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name="conv3",
    )
    for layer in model.layers[:6]:
        layer.trainable = False
    return model


def _dataset(tmp: Path, name: str, shape: tuple):
    from reuse.data.dataset import load_data

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(ROWS, *shape)).astype("float32")
    y = (np.arange(ROWS) % 10).astype("int64")
    path = tmp / f"{name}.npz"
    np.savez(path, x=x, y=y)
    return load_data(path)


def _bare_pass(bottom, data) -> float:
    started = time.perf_counter()
    for _, xb, _ in data.batches(BATCH):
        bottom.predict_on_batch(xb)
    return time.perf_counter() - started


def _throughput(name, model, data, tmp: Path) -> list[dict]:
    from reuse.cache import cache_features
    from reuse.surgery import cuts

    tap = cuts.frozen_prefix_top(model)
    bottom = cuts.bottom_model(model, [tap])
    bottom.predict_on_batch(next(data.batches(BATCH))[1])  # compile once, outside the timings
    bare, cached = [], []
    for _ in range(3):  # alternate, keep the best of each: the machine is shared
        bare.append(_bare_pass(bottom, data))
        started = time.perf_counter()
        cache_features(model, data, tmp / f"{name}.h5", taps=[tap], batch_size=BATCH)
        cached.append(time.perf_counter() - started)
    bare_t, cache_t = min(bare), min(cached)
    return [
        {"name": f"{name}: bare forward pass", "value": ROWS / bare_t, "unit": "rows/s"},
        {
            "name": f"{name}: cache-features",
            "value": ROWS / cache_t,
            "unit": "rows/s",
            "ratio": bare_t / cache_t,
            "target": ">= 0.9x bare pass",
        },
    ]


def _compression(model, data, tmp: Path) -> list[dict]:
    import h5py

    from reuse.cache import cache_features

    rows = []
    for spec in ("none", "lzf", "gzip:1", "gzip:4"):
        out = tmp / f"comp_{spec.replace(':', '')}.h5"
        started = time.perf_counter()
        cache_features(model, data, out, batch_size=BATCH, compression=spec, verify=0)
        write = time.perf_counter() - started
        with h5py.File(out, "r") as f:
            ds = f["features/" + next(iter(f["features"]))]
            started = time.perf_counter()
            for s in range(0, len(ds), BATCH):
                ds[s : s + BATCH]
            read = time.perf_counter() - started
        rows.append({"name": f"mlp compression {spec}: write", "value": write, "unit": "s"})
        rows.append({"name": f"mlp compression {spec}: batched read", "value": read, "unit": "s"})
        rows.append(
            {
                "name": f"mlp compression {spec}: size",
                "value": out.stat().st_size / 1e6,
                "unit": "MB",
            }
        )
    return rows


_RSS_CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from reuse.data.dataset import Dataset
from reuse.cache import cache_features
sys.path.insert(0, sys.argv[3] + "/bench")
from bench_cache import mlp
x = np.load(sys.argv[1], mmap_mode="r")
data = Dataset(sys.argv[1], x, None, np.arange(len(x), dtype=np.int64), None,
               {"path": sys.argv[1], "size": 0, "sha256": "bench", "selection": ""})
started = time.perf_counter()
cache_features(mlp(), data, sys.argv[2], batch_size=256, verify=3)
# VmHWM is this process's own peak. ru_maxrss is not: Linux carries the parent's peak across
# fork+exec, so a child of a large bench process would report the parent's size.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"maxrss_kb": hwm, "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - started}))
"""


def _write_npy(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 784))
    for s in range(0, rows, 50_000):
        x[s : s + 50_000] = rng.uniform(0, 1, size=(min(50_000, rows - s), 784)).astype(np.float32)
    x.flush()
    del x


def _rss(tmp: Path) -> list[dict]:
    figures = {}
    for rows in (60_000, 600_000):
        npy = tmp / f"x{rows}.npy"
        _write_npy(npy, rows)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, str(npy), str(tmp / f"rss{rows}.h5"), str(ROOT)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        figures[rows] = json.loads(out.stdout.strip().splitlines()[-1])
        npy.unlink()
        (tmp / f"rss{rows}.h5").unlink()
    small, big = figures[60_000]["maxrss_kb"], figures[600_000]["maxrss_kb"]
    return [
        {"name": "peak RSS, 60k rows (memmap .npy)", "value": small / 1024, "unit": "MiB"},
        {
            "name": "peak RSS, 600k rows (memmap .npy)",
            "value": big / 1024,
            "unit": "MiB",
            "ratio": big / small,
            "target": "< 1.15x the 60k run",
        },
        {
            "name": "cache-features 600k rows (MLP)",
            "value": 600_000 / figures[600_000]["seconds"],
            "unit": "rows/s",
        },
    ]


def run() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp_name:
        tmp = Path(tmp_name)
        mlp_data = _dataset(tmp, "mlp", (784,))
        model = mlp()
        rows += _throughput("mlp 784-5x300", model, mlp_data, tmp)
        rows += _compression(model, mlp_data, tmp)
        del mlp_data
        rows += _throughput("conv 3 layers", convnet(), _dataset(tmp, "conv", (28, 28, 1)), tmp)
        rows += _rss(tmp)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
