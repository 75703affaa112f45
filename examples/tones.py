"""Two classes of audio clips for basic-pitch's SavedModel: a noisy sine near 220 Hz (class 0)
or near 880 Hz (class 1), 43844 samples at 22050 Hz (the model's input_2 (None, 43844, 1)).

    python examples/tones.py train.npz 64 0    # PATH N SEED: x (N, 43844, 1) float32, y (N,)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLES = 43844
RATE = 22050.0


def basic_pitch_model() -> Path | None:
    """basic-pitch's installed `saved_models/icassp_2022/nmp` folder, found without importing
    the package (it was installed with --no-deps: the model only), or None."""
    import importlib.util

    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "saved_models/icassp_2022/nmp"
    return path if (path / "saved_model.pb").exists() else None


def tones(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (n, 43844, 1) float32 and y (n,) int64, classes alternating 0, 1, 0, ..."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    f = np.where(y == 0, 220.0, 880.0) * rng.uniform(0.97, 1.03, n)
    t = np.arange(SAMPLES) / RATE
    x = 0.5 * np.sin(2 * np.pi * f[:, None] * t[None]) + 0.05 * rng.normal(size=(n, SAMPLES))
    return x.astype("float32")[..., None], y.astype("int64")


def save_tones(path: str | Path, n: int, seed: int) -> Path:
    """Write `tones(n, seed)` to an .npz file with keys x and y."""
    x, y = tones(n, seed)
    np.savez(path, x=x, y=y)
    return Path(path)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1])
        sys.exit(2)
    out = save_tones(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    print(f"wrote {out}")
