"""`reuse --help` and `reuse inspect` wall time (real processes), against a Keras load + summary().

Targets (issue 2): `reuse --help` < 0.3 s; `reuse inspect` of a 5-hidden-layer .keras MLP
< 0.5 s and at least 10x faster than loading it with Keras and printing summary().
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _wall(argv: list[str], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=_env())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> list[dict]:
    reuse = [sys.executable, "-m", "reuse"]
    help_s = _wall([*reuse, "--help"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp5.keras"
        build = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.helpers import mlp; mlp(hidden=5).save({str(path)!r})"
        subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, env=_env())
        inspect_s = _wall([*reuse, "inspect", str(path)])
        keras_s = _wall(
            [
                sys.executable,
                "-c",
                f"import keras; keras.models.load_model({str(path)!r}).summary()",
            ],
            repeats=3,
        )
    ratio = keras_s / inspect_s
    return [
        {
            "name": "reuse --help (wall, median of 5)",
            "value": help_s,
            "unit": "s",
            "target": "< 0.3 s",
        },
        {
            "name": "reuse inspect mlp5.keras (wall, median of 5)",
            "value": inspect_s,
            "unit": "s",
            "ratio": ratio,
            "target": ">= 10x, and < 0.5 s",
        },
        {"name": "keras load_model + summary() (wall, median of 3)", "value": keras_s, "unit": "s"},
    ]
