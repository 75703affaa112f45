"""The dataset every command that takes `--data` or `--val` reads: `load_data`, `Dataset`, `DataOptions`.

The contract other modules rely on (keep it stable; additions are marked "added"):

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

Added:

    ds.identity["hash"]     # "sha256" | "sha256-sampled" | "sha256-listing" (how sha256 was made)
    ds.identity["labels"]   # path of a separate labels file, when there is one
    ds.class_names          # names of the classes (image folders, string labels), or None
    ds.reshape_for(model.input_shape)   # the shape rule of `shapes`: flatten or a channel, else Error
    ds.check_labels(n_outputs)          # integer labels must fit the model's outputs
    ds.require_labels()                 # Error when the data has no labels
    ds.close() / with load_data(...) as ds:   # closes an HDF5 file handle
    check_finite(ds)                    # a full pass that finds NaN/Inf in the inputs
    DataOptions(...).load() / .load_split()   # the --data options of every command

Where the rest lives: one reader per format in `readers` (and which reader a path needs),
the row selection and option parsing in `selection`, the content digests in `identity`, and
the rule that fits a sample shape to a model's input in `shapes`.

Images from IDX files and image folders are uint8; batches() turns them into float32 in [0, 1]
(divided by 255) unless scale=False. Other formats are cast to float32 as stored. Image shapes
are kept as they are ((28, 28) for MNIST): `reshape_for` fits them to a model's input.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, UsageError
from reuse.data import shapes
from reuse.data.readers import ImageFolder, Owner, Source, normalize_labels, open_source
from reuse.data.selection import (
    parse_classes,
    parse_image_size,
    positive_int,
    select_rows,
    selection_string,
)


@dataclass(frozen=True)
class DataOptions:
    """The data options every command takes (`--data`, `--labels`, ... `--seed`).

    Example:
        >>> opts = DataOptions(data="mnist/", classes="5-9", per_class=100, val_split=0.2, seed=0)
        >>> train, val = opts.load_split()
    """

    data: str | None = None
    labels: str | None = None
    x_key: str | None = None
    y_key: str | None = None
    label_col: str | int | None = None
    image_size: tuple[int, int] | None = None
    split: str | None = None
    classes: str | None = None
    per_class: int | None = None
    limit: int | None = None
    val_split: float | None = None
    seed: int | None = None
    scale: bool = True

    def load(self, path: str | os.PathLike | None = None) -> Dataset:
        """Read `path` (default: `data`) with these options; `val_split` is not applied.

        Raises:
            UsageError: no path was given.
            DataError: see `load_data`.
        """
        path = self.data if path is None else path
        if path is None:
            raise UsageError("no data given", "pass --data FILE")
        return load_data(
            path,
            labels=self.labels,
            x_key=self.x_key,
            y_key=self.y_key,
            label_col=self.label_col,
            image_size=self.image_size,
            split=self.split,
            classes=self.classes,
            per_class=self.per_class,
            limit=self.limit,
            seed=self.seed,
            scale=self.scale,
        )

    def load_split(self) -> tuple[Dataset, Dataset | None]:
        """(train, val): `data` split by `val_split` (seeded by `seed`, 0 when None), or (data, None)."""
        ds = self.load()
        if not self.val_split:
            return ds, None
        return ds.split(self.val_split, seed=0 if self.seed is None else self.seed)


def check_val_split(fraction: float | None) -> None:
    """Refuse a `--val-split` outside (0, 1); None (no split) passes.

    Raises:
        UsageError: the fraction is not strictly between 0 and 1 (exit code 2).
    """
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise UsageError(
            f"`--val-split` must be between 0 and 1 (exclusive). Received: val_split={fraction}",
            "use e.g. --val-split 0.2 to hold out 20% of the training rows",
        )


@dataclass
class Dataset:
    """Selected rows of a data source: x is read lazily (in batches), y is in memory.

    Fields:
        x: the whole source's inputs, as stored (every row, before selection, not scaled):
            an ndarray, memmap or h5py dataset. Read the selected rows with `arrays()`,
            `take(positions)` or `batches(n)`, which select, scale and reshape them.
        y: the selected rows' labels, (len(self),), remapped by `--classes`; None without labels.
        indices: the selected rows' positions in `x`, (len(self),) int64.
        class_map, class_names, identity, divisor, sample_shape: what the selection did.
    """

    path: str
    x: object  # array-like indexable with sorted int arrays: ndarray, memmap, h5py dataset
    y: np.ndarray | None
    indices: np.ndarray
    class_map: dict | None = None
    identity: dict = field(default_factory=dict)
    class_names: list[str] | None = None
    divisor: float | None = None  # divide the float32 inputs by this (255 for uint8 images)
    sample_shape: tuple | None = None  # set by reshape_for; None = the source's own shape
    owner: Owner | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(len(self.indices))

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file the inputs are read from (HDF5); a no-op for the other formats."""
        if self.owner is not None:
            self.owner.close()

    @property
    def input_shape(self) -> tuple:
        if self.sample_shape is not None:
            return tuple(self.sample_shape)
        return tuple(int(d) for d in self.x.shape[1:])

    def take(self, positions) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows at `positions` (positions in this selection, not source indices), as float32."""
        positions = np.asarray(positions, dtype=np.int64)
        source = self.indices[positions]
        order = np.argsort(source, kind="stable")
        rows = _read_rows(self.x, source[order])
        xb = np.empty((len(source), *self.input_shape), dtype=np.float32)
        xb[order] = np.asarray(rows, dtype=np.float32).reshape(len(source), *self.input_shape)
        if self.divisor is not None:
            xb /= np.float32(self.divisor)
        yb = None if self.y is None else self.y[positions]
        return xb, yb

    def batches(
        self, batch_size: int, start: int = 0, check_finite: bool = True
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """(offset, x, y) batches in selection order, starting at row `start`.

        Yields:
            offset: the row (in selection order) of the batch's first row.
            x: float32 inputs (B, *input_shape) with B = batch_size (the last batch may be
               smaller); integer images are scaled as the reader scales them.
            y: the labels of those rows (B,) or (B, ...), or None when the data has none.

        Raises:
            DataError: a batch holds NaN or Inf (names the rows), unless check_finite=False.
        """
        if batch_size < 1:
            raise UsageError(
                f"`batch_size` must be > 0. Received: batch_size={batch_size}",
                "e.g. batch_size=256",
            )
        floating = np.dtype(getattr(self.x, "dtype", np.float32)).kind in "fc"
        for offset in range(start, len(self), batch_size):
            positions = np.arange(offset, min(offset + batch_size, len(self)))
            xb, yb = self.take(positions)
            if check_finite and floating:
                self._check_batch(offset, xb)
            yield offset, xb, yb

    def _check_batch(self, offset: int, xb: np.ndarray) -> None:
        finite = np.isfinite(xb.reshape(len(xb), -1)).all(axis=1)
        if finite.all():
            return
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{self.path}: NaN or Inf in the inputs, rows {offset}..{offset + len(xb) - 1} "
            f"(first at row {offset + bad[0]}, source row {self.indices[offset + bad[0]]}; "
            f"{len(bad)} bad row(s) in this batch)",
            "clean or drop those rows",
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All selected rows in memory: (x float32, y). Meant for small sets."""
        return self.take(np.arange(len(self)))

    def subset(self, positions, tag: str) -> Dataset:
        """The rows at `positions`, with `tag` appended to identity["selection"]."""
        positions = np.asarray(positions, dtype=np.int64)
        identity = dict(self.identity)
        identity["selection"] = f"{identity.get('selection', '')}|{tag}"
        return dataclasses.replace(
            self,
            y=None if self.y is None else self.y[positions],
            indices=self.indices[positions],
            identity=identity,
        )

    def split(self, fraction: float, seed: int | None = 0) -> tuple[Dataset, Dataset]:
        """(train, val): a seeded random `fraction` of the rows goes to val; both keep source order.

        Example:
            >>> train, val = ds.split(0.2, seed=0)

        Raises:
            UsageError: fraction not strictly between 0 and 1, or too few rows to split.
        """
        check_val_split(fraction)
        if len(self) < 2:
            raise UsageError(f"{self.path}: {len(self)} row(s) cannot be split", "select more rows")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self))
        n_val = min(len(self) - 1, max(1, int(round(fraction * len(self)))))
        val_pos, train_pos = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return self.subset(train_pos, f"train{fraction}:{seed}"), self.subset(
            val_pos, f"val{fraction}:{seed}"
        )

    def reshape_for(self, model_input_shape: Sequence) -> Dataset:
        """This data shaped for a model's input by the rule of `reuse.data.shapes`: flattened,
        unflattened, a size-1 channel axis added or removed, or as is.

        Example:
            >>> ds.input_shape                      # MNIST
            (28, 28)
            >>> ds.reshape_for((None, 784)).input_shape
            (784,)
            >>> ds.reshape_for((None, 28, 28, 1)).input_shape
            (28, 28, 1)

        Args:
            model_input_shape: the model's `input_shape`; a leading batch dimension (None) is
                dropped. None dimensions match any size.

        Raises:
            DataError: the shapes do not fit; names both (see `reuse.data.shapes`).
        """
        want = tuple(None if d is None else int(d) for d in model_input_shape)
        if len(want) > 1 and want[0] is None:
            want = want[1:]
        fit = shapes.fit_shape(self.input_shape, want, source=self.path)
        if not fit.changes:
            return self
        return dataclasses.replace(self, sample_shape=fit.target)

    def require_labels(self) -> None:
        """Raise DataError unless the data has labels (training and evaluation need them)."""
        if self.y is not None:
            return
        suffix = Path(self.path).suffix.lower()
        hint = {
            ".npy": "pass the labels with --labels FILE (.npy, .txt or .csv)",
            ".npz": "store them under the key y, or name the key with --y-key",
            ".h5": "name the labels dataset with --y-key",
            ".hdf5": "name the labels dataset with --y-key",
            ".csv": "name the label column with --label-col",
        }.get(suffix, "pass the labels with --labels FILE")
        raise DataError(f"{self.path} has no labels", hint)

    def check_labels(self, n_outputs: int) -> None:
        """Integer labels must be valid class ids for a model with `n_outputs` outputs.

        One output means binary labels (0 or 1). Float labels are regression targets and pass.

        Raises:
            DataError: a label is out of range; names the label and the model's output count.
        """
        if self.y is None or self.y.dtype.kind not in "iu" or len(self.y) == 0:
            return
        low, high = int(self.y.min()), int(self.y.max())
        limit = 2 if n_outputs == 1 else n_outputs
        if low < 0 or high >= limit:
            bad = low if low < 0 else high
            what = "binary: 0 or 1" if n_outputs == 1 else f"labels must be 0..{n_outputs - 1}"
            raise DataError(
                f"{self.path}: label {bad} is out of range for a model with {n_outputs} "
                f"output(s) ({what})",
                "select classes with --classes (remapped to 0..k-1), or give the model a head "
                "with more outputs",
            )


def check_finite(ds: Dataset, batch_size: int = 4096) -> None:
    """Read every input row once and raise at the first batch with NaN or Inf.

    Example:
        >>> check_finite(load_data("train.npy", labels="y.npy"))

    Raises:
        DataError: names the rows (selection positions and source rows) that are not finite.
    """
    for _ in ds.batches(batch_size, check_finite=True):
        pass


def _read_rows(x, source: np.ndarray):
    """Rows `source` (sorted, unique) of x; contiguous runs are read as one slice (fast for HDF5)."""
    if len(source) == 0:
        return np.asarray(x[0:0])
    lo, hi = int(source[0]), int(source[-1]) + 1
    if hi - lo == len(source):
        return np.asarray(x[lo:hi])
    if isinstance(x, np.ndarray):
        return x[source]
    # Point selections are slow in HDF5 and image decoding is per row; a covering slice is fast
    # as long as it stays small (64 MB), so HDF5 reads one slice per batch when it can.
    row_bytes = int(np.prod(x.shape[1:])) * np.dtype(getattr(x, "dtype", np.float32)).itemsize
    if not isinstance(x, ImageFolder) and (hi - lo) * row_bytes <= max(
        64 << 20, 4 * len(source) * row_bytes
    ):
        return np.asarray(x[lo:hi])[source - lo]
    return np.asarray(x[source])


def _check_lengths(x, y, where: str) -> None:
    if y is not None and len(y) != len(x):
        raise DataError(
            f"{where}: the inputs have {len(x)} rows but the labels have {len(y)}",
            "inputs and labels must have one row each per sample",
        )


def load_data(
    path: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
    label_col: str | int | None = None,
    image_size=None,
    split: str | None = None,
    classes=None,
    per_class: int | None = None,
    limit: int | None = None,
    seed: int | None = None,
    scale: bool = True,
    require_labels: bool = False,
) -> Dataset:
    """Open a data source and select rows; inputs stay on disk and are read by `batches()`.

    Example:
        >>> ds = load_data("mnist/", split="train", classes="5-9", per_class=100, seed=0)
        >>> len(ds), ds.input_shape, ds.class_map
        (500, (28, 28), {5: 0, 6: 1, 7: 2, 8: 3, 9: 4})

    Args:
        path: a file (.npz, .npy, .h5/.hdf5, .csv, IDX) or a folder (MNIST IDX files, or one
            sub-folder of images per class).
        labels: labels for .npy or IDX inputs (.npy, .txt, .csv, IDX).
        x_key, y_key: array names in .npz/HDF5 files (default: guessed; see `readers`).
        label_col: CSV label column, by name or index (default: a column named label, labels,
            y, target or class; otherwise no labels).
        image_size: (h, w) or "HxW": resize folder images (default: the first image's size).
        split: "train" or "test" for a folder of MNIST files (default train) or .npz/HDF5
            files with x_train/x_test keys.
        classes: "5-9", "1,3,7" or a list: keep these labels, remapped to 0..k-1.
        per_class: keep N rows of each class (seeded shuffle when `seed` is given).
        limit: keep N rows (random when `seed` is given, else the first N).
        seed: makes per_class and limit draw at random, reproducibly.
        scale: divide uint8 images (IDX, image folders) by 255.
        require_labels: raise when the data has no labels.

    Returns:
        A Dataset (see the module doc).

    Raises:
        DataError: unreadable or inconsistent data, missing keys/labels, empty selection.
        UsageError: malformed options.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder", "check the --data path")
    per_class = positive_int("per_class", per_class)
    limit = positive_int("limit", limit)
    image_size = parse_image_size(image_size)
    if classes is not None:
        parse_classes(classes)  # malformed specs are usage errors, before any reading
    if split is not None and split not in ("train", "test"):
        raise UsageError(
            f"`--split` must be train or test. Received: split={split!r}",
            "use --split train or --split test (hold out validation rows with --val-split F)",
        )

    source = open_source(
        p,
        labels=labels,
        x_key=x_key,
        y_key=y_key,
        label_col=label_col,
        image_size=image_size,
        split=split,
    )
    try:
        return _finish(p, source, classes, per_class, limit, seed, scale, require_labels)
    except BaseException:
        if source.owner is not None:
            source.owner.close()
        raise


def _finish(
    p: Path, source: Source, classes, per_class, limit, seed, scale, require_labels
) -> Dataset:
    where = str(p)
    x, y = source.x, source.y
    if getattr(x, "ndim", 1) < 1 or len(x) == 0:
        raise DataError(f"{where} holds no rows of inputs", "check the file")
    class_names = source.class_names
    if y is not None:
        y, names = normalize_labels(y, source.identity.get("labels", where))
        class_names = names or class_names
        _check_lengths(x, y, where)
    indices, y, class_map, kept = select_rows(y, len(x), classes, per_class, limit, seed, where)
    if len(indices) == 0:
        raise DataError(
            f"{where}: the selection holds no rows", "loosen --classes/--per-class/--limit"
        )
    if kept is not None and class_names is not None:
        class_names = [class_names[c] if c < len(class_names) else str(c) for c in kept]
    identity = dict(source.identity)
    opts = {
        "classes": ",".join(map(str, parse_classes(classes))) if classes is not None else None,
        "per_class": per_class,
        "limit": limit,
        "seed": seed,
        "scale": scale if source.scale else None,
    }
    identity["selection"] = selection_string(
        {k: v for k, v in source.keys.items() if k != "mode"}, opts
    )
    ds = Dataset(
        where,
        x,
        y,
        indices,
        class_map,
        identity,
        class_names=class_names,
        divisor=255.0 if source.scale and scale else None,
        owner=source.owner,
    )
    if require_labels:
        ds.require_labels()
    return ds


def as_dataset(data):
    """`data` itself, or the Dataset `load_data` reads from a data file's path.

    Raises:
        DataError: a path that is not readable data (see `reuse.data.dataset.load_data`).
    """
    if isinstance(data, (str, os.PathLike)):
        return load_data(data)
    return data
