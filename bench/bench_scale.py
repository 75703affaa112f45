"""Scaling beyond one device: the Ray engine of cache-features and mirrored training.

Measured in one run, each case in a fresh process (splitting the CPU into logical devices and
starting Ray must come before TensorFlow starts):

- `cache-features --engine ray`: rows per second of the frozen pass of a small convnet
  (4,096 rows of 32x32x3) with 1 actor x 2 TF threads and 2 actors x 1 thread, against the
  local engine (one process, TF's default threads): inside the actors (the busiest actor's
  time writing its shards), and for the whole call after `ray.init` (actor start, model
  loading, scheduling, the join). Ray's start-up is a row of its own.
- Ray's start-up cost: the whole `--engine ray` call on 256 rows against the local engine.
- `finetune --distribute mirrored` on 2 logical CPU devices against 1 device: seconds per
  epoch of `fit_arrays` on a dense head (8,192 rows of 512 features, global batch 256).

Run: `python bench/run.py scale` (or `make bench`). Without Ray the Ray rows are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SETUP = r"""
import sys, numpy as np, keras
d = sys.argv[1]
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inp)
x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
x = keras.layers.MaxPooling2D(name="pool")(x)
x = keras.layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
out = keras.layers.Dense(10, activation="softmax", name="out")(x)
m = keras.Model(inp, out)
for layer in m.layers[:-1]:
    layer.trainable = False
m.save(f"{d}/conv.keras")
rng = np.random.default_rng(0)
for name, n in (("big", 4096), ("small", 256)):
    np.savez(f"{d}/{name}.npz", x=rng.random((n, 32, 32, 3), dtype=np.float32), y=rng.integers(0, 10, n))
print("{}")
"""

_CACHE = r"""
import json, sys, time
from reuse.data import DataOptions
d, data, engine, workers, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
opts = DataOptions(data=f"{d}/{data}.npz")
started = time.perf_counter()
if engine == "local":
    from reuse.cache import cache_features
    from reuse.formats.model_io import load_model
    model = load_model(f"{d}/conv.keras")
    t0 = time.perf_counter()
    r = cache_features(model, opts.load(), f"{d}/{data}-local.h5", taps=["gap"], verify=0)
    print(json.dumps({"total": time.perf_counter() - started, "work": time.perf_counter() - t0, "rows": r.rows}))
else:
    from reuse.cache.engines import cache_with_ray
    r = cache_with_ray(f"{d}/conv.keras", opts, f"{d}/{data}-ray{workers}.h5", workers=workers,
                       threads=threads, taps=["gap"], verify=0)
    busy = {}
    for _, seconds, pid in r["shard_seconds"]:
        busy[pid] = busy.get(pid, 0.0) + seconds
    print(json.dumps({"total": time.perf_counter() - started, "work": r["seconds"] - r["ray_start_seconds"],
                      "compute": max(busy.values()), "start": r["ray_start_seconds"], "rows": r["rows"]}))
"""

_MIRRORED = r"""
import json, sys, time, numpy as np
from reuse.training.distribute import make_strategy, scope
n = int(sys.argv[1])
strategy = make_strategy("mirrored" if n > 1 else "none", cpu_devices=n)
import keras
from reuse.training.loop import fit_arrays
rng = np.random.default_rng(0)
x = rng.normal(size=(8192, 512)).astype("float32"); y = rng.integers(0, 10, 8192)
with scope(strategy):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((512,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    fit_arrays(m, x, y, batch_size=256, epochs=1, seed=0)  # compile and warm up
    t0 = time.perf_counter()
    fit_arrays(m, x, y, batch_size=256, epochs=4, initial_epoch=1, seed=0)
print(json.dumps({"epoch": (time.perf_counter() - t0) / 3}))
"""


def _python(code: str, *args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> list[dict]:
    rows: list[dict] = []
    try:
        import ray.data  # noqa: F401

        has_ray = True
    except ImportError:
        has_ray = False
    with tempfile.TemporaryDirectory() as d:
        _python(_SETUP, d)
        local = _python(_CACHE, d, "big", "local", 1, 0)
        rows.append(
            dict(
                name="cache local engine, 1 process",
                value=local["rows"] / local["work"],
                unit="rows/s",
            )
        )
        if has_ray:
            one = _python(_CACHE, d, "big", "ray", 1, 2)
            two = _python(_CACHE, d, "big", "ray", 2, 1)
            rows.append(
                dict(
                    name="cache ray 1 actor x 2 threads, in actor",
                    value=one["rows"] / one["compute"],
                    unit="rows/s",
                    ratio=local["work"] / one["compute"],
                    target="vs local engine",
                )
            )
            rows.append(
                dict(
                    name="cache ray 2 actors x 1 thread, in actors",
                    value=two["rows"] / two["compute"],
                    unit="rows/s",
                    ratio=one["compute"] / two["compute"],
                    target="vs 1 actor",
                )
            )
            for label, r in (("1 actor", one), ("2 actors", two)):
                rows.append(
                    dict(
                        name=f"cache ray {label}, whole call after ray.init",
                        value=r["rows"] / r["work"],
                        unit="rows/s",
                        ratio=local["work"] / r["work"],
                        target="vs local engine",
                    )
                )
            small_local = _python(_CACHE, d, "small", "local", 1, 0)
            small_ray = _python(_CACHE, d, "small", "ray", 1, 2)
            rows.append(dict(name="ray start-up (ray.init)", value=small_ray["start"], unit="s"))
            rows.append(
                dict(
                    name="cache 256 rows, ray total",
                    value=small_ray["total"],
                    unit="s",
                    ratio=small_ray["total"] / small_local["total"],
                    target="vs local total",
                )
            )
        else:
            for name in (
                "cache ray 1 actor x 2 threads",
                "cache ray 2 actors x 1 thread",
            ):  # skipped
                rows.append(dict(name=name, skipped="ray not installed (pip install 'ray[data]')"))
    one = _python(_MIRRORED, 1)
    two = _python(_MIRRORED, 2)
    rows.append(dict(name="fit_arrays epoch, 1 device", value=one["epoch"], unit="s"))
    rows.append(
        dict(
            name="fit_arrays epoch, mirrored 2 CPU devices",
            value=two["epoch"],
            unit="s",
            ratio=one["epoch"] / two["epoch"],
            target="speed-up vs 1",
        )
    )
    return rows
