"""Helpers for examples/mnist_transfer.sh: the data split, the from-scratch model, the table.

    python examples/mnist_helpers.py prepare MNIST_DIR WORK   # WORK/train.npz, valid.npz, scratch.keras
    python examples/mnist_helpers.py table WORK               # the results table

The split follows Geron's exercise (Hands-On Machine Learning, ch. 11), where the base model
held out the first 5,000 MNIST training images for validation:

    train: 100 images of each digit 5-9, drawn (seed 0) from training images 5,000-59,999;
    valid: 30 images of each digit 5-9, drawn (seed 0) from the first 5,000 training images.

Labels are remapped 5..9 -> 0..4, as `--classes 5-9` does, so the test set can be read straight
from the IDX files with `--split test --classes 5-9`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HELD_OUT = 5000  # the base model's validation images: the first 5,000 of the training file
CLASSES = range(5, 10)


def _draw(
    y: np.ndarray, positions: np.ndarray, per_class: int, rng: np.random.Generator
) -> np.ndarray:
    chosen = []
    for c in CLASSES:
        rows = positions[y[positions] == c]
        chosen.append(rng.choice(rows, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def prepare(mnist_dir: str, work: str, seed: int = 0) -> None:
    """Write WORK/train.npz, WORK/valid.npz (x float32 (n, 784) in [0, 1], y 0..4) and WORK/scratch.keras."""
    import reuse

    out = Path(work)
    out.mkdir(parents=True, exist_ok=True)
    ds = reuse.load_data(mnist_dir, split="train")
    y = np.asarray(ds.y)
    rng = np.random.default_rng(seed)
    everything = np.arange(len(y))
    parts = {
        "train": _draw(y, everything[HELD_OUT:], 100, rng),
        "valid": _draw(y, everything[:HELD_OUT], 30, rng),
    }
    for name, rows in parts.items():
        x, labels = ds.take(rows)
        x = np.asarray(x, dtype=np.float32).reshape(len(rows), -1)
        np.savez(out / f"{name}.npz", x=x, y=(np.asarray(labels) - 5).astype(np.int64))
        print(f"{out / name}.npz\t{len(rows)} rows", file=sys.stderr)
    scratch(out / "scratch.keras", seed=seed)


def scratch(path: Path, seed: int = 0) -> None:
    """The base model's architecture with fresh weights (its own initializers: He normal)."""
    import keras

    import reuse

    keras.utils.set_random_seed(seed)
    base = reuse.load_model(Path(__file__).resolve().parent.parent / "models" / "mnist_0to4.keras")
    fresh = keras.models.clone_model(base)  # same layers and config, newly initialized weights
    reuse.save_model(fresh, path)
    print(f"{path}\tmnist_0to4 architecture, re-initialized", file=sys.stderr)


def table(work: str) -> None:
    """Print one row per variant from WORK/<variant>.finetune.json, .evaluate.json and .seconds."""
    rows = []
    for spec in sorted(Path(work).glob("*.finetune.json")):
        name = spec.name.removesuffix(".finetune.json")
        tuned = _record(spec)
        evaluated = _record(spec.with_name(f"{name}.evaluate.json"))
        wall = float(spec.with_name(f"{name}.seconds").read_text())
        stages = tuned.get("stages") or []
        epochs = sum(s["epochs"] for s in stages)
        train_s = sum(s["seconds"] for s in stages)
        rows.append(
            (
                name,
                evaluated["metrics"]["accuracy"],
                train_s,
                wall,
                epochs,
                tuned.get("used_cache", False),
            )
        )
    header = f"{'variant':<28} {'test acc':>8} {'train s':>8} {'wall s':>7} {'epochs':>6}  cache"
    print(header)
    print("-" * len(header))
    for name, acc, train_s, wall, epochs, cached in rows:
        print(
            f"{name:<28} {acc:>8.4f} {train_s:>8.1f} {wall:>7.1f} {epochs:>6}  {'yes' if cached else 'no'}"
        )


def _record(path: Path) -> dict:
    return json.loads(path.read_text().strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    from reuse.core.errors import ReuseError

    command, *args = argv or ["--help"]
    try:
        if command == "prepare" and len(args) == 2:
            prepare(*args)
        elif command == "table" and len(args) == 1:
            table(*args)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ReuseError as err:  # the same one-line report as the `reuse` commands
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
