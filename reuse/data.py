"""Data readers shared by every command that takes `--data`, `--val` or `--features`.

INTERIM: only `.npz` is read so far; the full set of formats and selections follows.

The contract other modules rely on (keep it stable):

    ds = load_data("train.npz", classes="5-9", per_class=100, seed=0)
    len(ds)                 # rows after selection
    ds.input_shape          # per-sample shape, e.g. (784,)
    ds.y                    # np.ndarray of labels (remapped), or None
    ds.indices              # int64 source row index of each selected row
    ds.class_map            # {original_label: new_label} or None
    ds.identity             # {"path", "size", "sha256", "selection"}: what the data is
    for start, xb, yb in ds.batches(256, start=0): ...   # float32 batches, in order
    x, y = ds.arrays()      # everything in memory (small sets)
    train, val = ds.split(0.2, seed=0)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.errors import DataError


@dataclass
class Dataset:
    """Selected rows of a data source: x is read lazily (in batches), y is in memory."""

    path: str
    x: object  # array-like indexable with sorted int arrays: ndarray, memmap, h5py dataset
    y: np.ndarray | None
    indices: np.ndarray
    class_map: dict | None = None
    identity: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.indices))

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.x.shape[1:])

    def take(self, positions) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows at `positions` (positions in this selection, not source indices)."""
        positions = np.asarray(positions, dtype=np.int64)
        source = self.indices[positions]
        order = np.argsort(source, kind="stable")
        xb = np.empty((len(source), *self.input_shape), dtype=np.float32)
        xb[order] = np.asarray(self.x[source[order]], dtype=np.float32)
        yb = None if self.y is None else self.y[positions]
        return xb, yb

    def batches(self, batch_size: int, start: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """(offset, x, y) batches in selection order, starting at row `start`."""
        for offset in range(start, len(self), batch_size):
            positions = np.arange(offset, min(offset + batch_size, len(self)))
            xb, yb = self.take(positions)
            yield offset, xb, yb

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.take(np.arange(len(self)))

    def subset(self, positions, tag: str) -> Dataset:
        positions = np.asarray(positions, dtype=np.int64)
        identity = dict(self.identity)
        identity["selection"] = f"{identity.get('selection', '')}|{tag}"
        return Dataset(self.path, self.x, None if self.y is None else self.y[positions],
                       self.indices[positions], self.class_map, identity)

    def split(self, fraction: float, seed: int | None = 0) -> tuple[Dataset, Dataset]:
        if not 0.0 < fraction < 1.0:
            raise DataError(f"--val-split must be between 0 and 1. Received: {fraction}", "use e.g. --val-split 0.2")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self))
        n_val = max(1, int(round(fraction * len(self))))
        val_pos, train_pos = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return self.subset(train_pos, f"train{fraction}:{seed}"), self.subset(val_pos, f"val{fraction}:{seed}")


def file_identity(path: str | os.PathLike) -> dict:
    p = Path(path)
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(p.resolve()), "size": p.stat().st_size, "sha256": digest.hexdigest()}


def load_data(path: str | os.PathLike, **options) -> Dataset:
    """Read a data source and apply the selection options (interim: .npz only)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file", "check the --data path")
    with np.load(p, allow_pickle=False) as npz:
        keys = list(npz.keys())
        xk = next((k for k in ("x", "X", "x_train") if k in keys), None)
        yk = next((k for k in ("y", "Y", "y_train") if k in keys), None)
        if xk is None:
            raise DataError(f"{p} has no inputs (keys present: {', '.join(keys)})", "name the inputs x")
        x = npz[xk]
        y = npz[yk] if yk else None
    identity = file_identity(p)
    identity["selection"] = ""
    return Dataset(str(p), x, y, np.arange(len(x), dtype=np.int64), None, identity)
