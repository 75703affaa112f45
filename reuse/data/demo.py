"""Demo data from an installed package: scikit-learn's 8x8 digits as train/valid/test `.npz`.

`make demo`, the examples and the tests need a small labelled data set that every machine
has without a download. scikit-learn ships the UCI 8x8 digits (1,797 images) inside the
package, so the data comes from there rather than from files kept in the repository.

    python -m reuse.data.demo demo/ --classes 5-9
    # demo/train.npz  demo/valid.npz  demo/test.npz  (x: float32 (n, 64) in [0, 1], y: 0..4)

The split is stratified and depends only on `seed`, so the files are the same bytes on
every run. `models/digits_0to4.keras` was trained on the train split of classes 0-4.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, ReuseError, UsageError
from reuse.data.selection import class_list

SPLITS = ("train", "valid", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
SKLEARN_INSTALL = "pip install 'keras-reuse[demo]' (or: pip install scikit-learn)"


def _check_classes(classes: Iterable[int]) -> list[int]:
    try:
        chosen = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise UsageError(
            f"`classes` must be digits 0-9. Received: classes={classes!r}",
            "e.g. classes=range(5, 10)",
        ) from None
    bad = [c for c in chosen if not 0 <= c <= 9]
    if not chosen or bad:
        raise UsageError(
            f"`classes` must be one or more digits 0-9. Received: classes={chosen}",
            "e.g. classes=range(5, 10) or --classes 5-9",
        )
    if len(set(chosen)) != len(chosen):
        raise UsageError(
            f"`classes` lists a digit twice. Received: classes={chosen}", "list each digit once"
        )
    return chosen


def _check_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise UsageError(
            f"`fractions` must be three positive numbers (train, valid, test) that sum to 1. "
            f"Received: fractions={tuple(fractions)}",
            "e.g. fractions=(0.6, 0.2, 0.2)",
        )
    return tuple(float(f) for f in fractions)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 scikit-learn digits: x float32 (n, 64) scaled to [0, 1], y int64 0-9.

    Raises:
        ReuseError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ReuseError(
            "the demo data needs scikit-learn, which is not installed", SKLEARN_INSTALL
        ) from None
    digits = load_digits()
    # Pixel values are counts 0..16 of an 4x4 block of the original 32x32 bitmap.
    x = (digits.data / 16.0).astype(np.float32)
    return x, digits.target.astype(np.int64)


def digits_split(
    classes: Iterable[int] = range(5, 10),
    *,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    remap: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """Split the digits of `classes` into train / valid / test, stratified by class.

    Example:
        >>> parts = digits_split(range(5, 10))
        >>> parts["train"]["x"].shape, sorted(set(parts["train"]["y"]))
        ((537, 64), [0, 1, 2, 3, 4])

    Args:
        classes: the digits to keep, in label order (label i is the digit `classes[i]`).
        fractions: shares of each class that go to train, valid and test.
        seed: decides which images go where; the same seed gives the same split.
        remap: relabel the digits 0..k-1 in `classes` order (False keeps the digits).

    Returns:
        {"train"|"valid"|"test": {"x": float32 (n, 64), "y": int64 (n,), "classes": int64
        (k,) the digit of each label, "index": int64 (n,) the row in `load_digits()`}}.
        Rows are in their original order.

    Raises:
        UsageError: `classes` or `fractions` are invalid.
        ReuseError: scikit-learn is not installed.
    """
    chosen = _check_classes(classes)
    fractions = _check_fractions(fractions)
    x, y = digits_arrays()
    rng = np.random.default_rng(seed)
    picked: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for digit in chosen:
        rows = rng.permutation(np.flatnonzero(y == digit))
        n_train = int(round(fractions[0] * len(rows)))
        n_valid = int(round(fractions[1] * len(rows)))
        picked["train"].append(rows[:n_train])
        picked["valid"].append(rows[n_train : n_train + n_valid])
        picked["test"].append(rows[n_train + n_valid :])
    lookup = {digit: i for i, digit in enumerate(chosen)} if remap else {d: d for d in chosen}
    out = {}
    for name in SPLITS:
        index = np.sort(np.concatenate(picked[name])).astype(np.int64)
        labels = np.array([lookup[int(d)] for d in y[index]], dtype=np.int64)
        out[name] = {
            "x": x[index],
            "y": labels,
            "classes": np.array(chosen, dtype=np.int64),
            "index": index,
        }
    return out


def write_digits_npz(
    out_dir: str | os.PathLike,
    classes: Iterable[int] = range(5, 10),
    *,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    remap: bool = True,
) -> dict[str, Path]:
    """Write `train.npz`, `valid.npz` and `test.npz` of the digits `classes` into `out_dir`.

    Each file holds `x` (float32 (n, 64) in [0, 1]), `y` (int64 labels), `classes` (the
    digit of each label) and `index` (source rows). Same arguments, same bytes.

    Example:
        >>> paths = write_digits_npz("demo", classes=range(5, 10))
        >>> paths["train"]
        PosixPath('demo/train.npz')

    Args:
        out_dir: folder to write into (created if missing).
        classes, fractions, seed, remap: as in `digits_split`.

    Returns:
        {"train"|"valid"|"test": path written}.

    Raises:
        UsageError: `classes` or `fractions` are invalid.
        DataError: `out_dir` exists and is not a folder.
        ReuseError: scikit-learn is not installed.
    """
    from reuse.core.reproducible import save_npz

    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} exists and is not a folder", "give a folder for the demo data")
    parts = digits_split(classes, fractions=fractions, seed=seed, remap=remap)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: save_npz(folder / f"{name}.npz", parts[name]) for name in SPLITS}


def main(argv: list[str] | None = None) -> int:
    """`python -m reuse.data.demo OUT_DIR [--classes 5-9] [--seed 0] [--keep-labels]`."""
    parser = argparse.ArgumentParser(
        prog="python -m reuse.data.demo",
        description="Write train/valid/test .npz files of scikit-learn's 8x8 digits.",
        epilog="Example: python -m reuse.data.demo demo --classes 5-9",
    )
    parser.add_argument("out_dir", help="folder to write train.npz, valid.npz, test.npz into")
    parser.add_argument(
        "--classes", default="5-9", help="digits to keep, e.g. 5-9 or 0,2,4 (default 5-9)"
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--keep-labels", action="store_true", help="keep the digits as labels instead of 0..k-1"
    )
    args = parser.parse_args(argv)
    try:
        paths = write_digits_npz(
            args.out_dir, class_list(args.classes), seed=args.seed, remap=not args.keep_labels
        )
    except ReuseError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    for path in paths.values():
        with np.load(path) as npz:
            print(f"{path}\t{len(npz['y'])} rows", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
