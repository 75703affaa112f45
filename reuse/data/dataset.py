"""Data readers shared by every command that takes `--data`, `--val` or `--features`.

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
    ds.reshape_for(model.input_shape)   # flatten (28,28)->(784,) or add a channel, else Error
    ds.check_labels(n_outputs)          # integer labels must fit the model's outputs
    ds.require_labels()                 # Error when the data has no labels
    ds.close() / with load_data(...) as ds:   # closes an HDF5 file handle
    check_finite(ds)                    # a full pass that finds NaN/Inf in the inputs
    DataOptions(...).load() / .load_split()   # the --data options of every command

Formats (chosen by extension, or by what a folder holds):

    .npz          keys x/y, X/y, x_train/y_train, features/labels... (or x_key/y_key);
                  np.savez (uncompressed) members are memory-mapped, savez_compressed ones
                  are decompressed into memory
    .npy          inputs only, memory-mapped; labels from `labels=` (.npy, .txt, .csv, IDX)
    .h5/.hdf5     x_key/y_key (guesses x, X, features, images / y, labels); x read in slices
    .csv          numeric columns -> float32; label column by name or index (label_col);
                  read into memory
    folder        one sub-folder per class of images, decoded lazily with Pillow;
                  class names sorted -> 0..k-1, names in ds.class_names
    IDX           MNIST files (gzipped or not): the images file finds its labels file; a
                  folder of the four MNIST files is read with split="train"|"test"

Images from IDX files and image folders are uint8; batches() turns them into float32 in [0, 1]
(divided by 255) unless scale=False. Other formats are cast to float32 as stored. Image shapes
are kept as they are ((28, 28) for MNIST): `reshape_for` fits them to a model's input.

Selection is applied to the labels only (x stays lazy), in this order: `classes` (labels
remapped to 0..k-1 in sorted order of the requested classes), `per_class` (the first N rows of
each class; with `seed`, N rows drawn by a seeded shuffle), `limit` (the first N rows; with
`seed`, N rows drawn at random). Selected rows keep the source order.
`identity["selection"]` is a canonical string of the options that shape the rows and values,
so that caches can tell selections apart.

Content identity: sha256 of the file (of the inputs and labels files together when there are
two); for a file larger than 512 MB, a sample: its size, the first and last 16 MB and 64 evenly
spaced 1 MB blocks ("sha256-sampled"); for an image folder, of the sorted list of files with
their sizes and modification times ("sha256-listing"). Each file is hashed once per process.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
import weakref
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, UsageError

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
FORMATS_HINT = (
    "use .npz, .npy (with --labels), .h5/.hdf5, .csv, a folder of images with one sub-folder "
    "per class, or MNIST IDX files"
)
SAMPLE_ABOVE = 512 * 1024 * 1024
_EDGE = 16 * 1024 * 1024
_BLOCK = 1024 * 1024
_BLOCKS = 64


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


class _Owner:
    """Keeps an open file (HDF5) alive while any Dataset made from it exists; closes it after."""

    def __init__(self, handle):
        self.handle = handle
        self._finalizer = weakref.finalize(self, handle.close)

    def close(self) -> None:
        self._finalizer()


@dataclass
class Dataset:
    """Selected rows of a data source: x is read lazily (in batches), y is in memory."""

    path: str
    x: object  # array-like indexable with sorted int arrays: ndarray, memmap, h5py dataset
    y: np.ndarray | None
    indices: np.ndarray
    class_map: dict | None = None
    identity: dict = field(default_factory=dict)
    class_names: list[str] | None = None
    divisor: float | None = None  # divide the float32 inputs by this (255 for uint8 images)
    sample_shape: tuple | None = None  # set by reshape_for; None = the source's own shape
    owner: _Owner | None = field(default=None, repr=False)

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

        Raises:
            DataError: a batch holds NaN or Inf (names the rows), unless check_finite=False.
        """
        if batch_size < 1:
            raise UsageError(f"`batch_size` must be > 0. Received: batch_size={batch_size}")
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
        if not 0.0 < fraction < 1.0:
            raise UsageError(
                f"`--val-split` must be between 0 and 1. Received: val_split={fraction}",
                "use e.g. --val-split 0.2",
            )
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
        """This data shaped for a model's input: flattened, given a channel axis, or as is.

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
            DataError: the shapes do not fit; names both.
        """
        want = tuple(None if d is None else int(d) for d in model_input_shape)
        if len(want) > 1 and want[0] is None:
            want = want[1:]
        have = self.input_shape
        target = _fit_shape(have, want)
        if target is None:
            raise DataError(
                f"{self.path}: input shape {have} does not fit the model's input {want}",
                "check that the data and the model belong together (for images, --image-size)",
            )
        if target == have:
            return self
        return dataclasses.replace(self, sample_shape=target)

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
    if not isinstance(x, _ImageFolder) and (hi - lo) * row_bytes <= max(
        64 << 20, 4 * len(source) * row_bytes
    ):
        return np.asarray(x[lo:hi])[source - lo]
    return np.asarray(x[source])


def _fit_shape(have: tuple, want: tuple) -> tuple | None:
    """The shape to give samples of shape `have` for a model wanting `want`, or None."""
    if len(have) == len(want) and all(w is None or w == h for h, w in zip(have, want, strict=True)):
        return have
    total = int(np.prod(have)) if have else 1
    if len(want) == 1 and (want[0] is None or want[0] == total):
        return (total,)
    # Same dimensions apart from size-1 axes: (28, 28) -> (28, 28, 1), (28, 28, 1) -> (28, 28).
    core = [h for h in have if h != 1]
    target, j = [], 0
    for w in want:
        if w == 1:
            target.append(1)
        elif j < len(core) and (w is None or w == core[j]):
            target.append(core[j])
            j += 1
        else:
            return None
    return tuple(target) if j == len(core) else None


# ---------------------------------------------------------------- identity


_DIGESTS: dict[tuple, tuple[str, str]] = {}


def _file_digest(path: Path) -> tuple[str, str]:
    """(hex digest, method) of one file, memoized on (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = hashlib.sha256()
    size = stat.st_size
    with open(path, "rb") as f:
        if size <= SAMPLE_ABOVE:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            method = "sha256"
        else:
            # Hashing every byte of a many-GB file would dominate a run; a sample of the size,
            # both ends and 64 spread blocks catches truncation, appends and most edits.
            digest.update(str(size).encode())
            digest.update(f.read(_EDGE))
            span = size - 2 * _EDGE - _BLOCK
            for i in range(_BLOCKS):
                f.seek(_EDGE + span * i // (_BLOCKS - 1))
                digest.update(f.read(_BLOCK))
            f.seek(size - _EDGE)
            digest.update(f.read(_EDGE))
            method = "sha256-sampled"
    _DIGESTS[key] = (digest.hexdigest(), method)
    return _DIGESTS[key]


def file_identity(path: str | os.PathLike) -> dict:
    """{"path", "size", "sha256", "hash"} of one file (sampled above 512 MB; see the module doc).

    Example:
        >>> file_identity("train.npz")["sha256"][:12]
    """
    p = Path(path)
    digest, method = _file_digest(p)
    return {"path": str(p.resolve()), "size": p.stat().st_size, "sha256": digest, "hash": method}


def _identity(files: list[Path], labels: Path | None = None) -> dict:
    """Identity of inputs in `files[0]` (+ more files, e.g. an IDX labels file, + `labels`)."""
    every = list(files) + ([labels] if labels is not None else [])
    if len(every) == 1:
        identity = file_identity(every[0])
    else:
        parts = [file_identity(f) for f in every]
        combined = hashlib.sha256("".join(f"{p['sha256']}\n" for p in parts).encode()).hexdigest()
        methods = {p["hash"] for p in parts}
        identity = {
            "path": parts[0]["path"],
            "size": sum(p["size"] for p in parts),
            "sha256": combined,
            "hash": "sha256-sampled" if "sha256-sampled" in methods else "sha256",
        }
        identity["labels"] = parts[-1]["path"]
    return identity


def _folder_identity(root: Path, files: list[Path]) -> dict:
    digest = hashlib.sha256()
    total = 0
    for f in sorted(files):
        st = f.stat()
        total += st.st_size
        digest.update(
            f"{f.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode()
        )
    return {
        "path": str(root.resolve()),
        "size": total,
        "sha256": digest.hexdigest(),
        "hash": "sha256-listing",
    }


# ---------------------------------------------------------------- option parsing


def parse_classes(spec) -> list[int]:
    """Parse a class selection: "5-9" -> [5..9], "1,3,7" -> [1, 3, 7], "0,5-7" mixes; lists pass.

    Raises:
        UsageError: a malformed spec; echoes it.
    """
    if isinstance(spec, (list, tuple, range, np.ndarray)):
        values = [int(v) for v in spec]
    else:
        text = str(spec).replace(" ", "")
        values = []
        for part in text.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
                raise UsageError(
                    f"`--classes` must be a range or a list of labels. Received: classes={spec!r}",
                    "use e.g. --classes 5-9 or --classes 1,3,7",
                )
            low = int(m.group(1))
            high = int(m.group(2)) if m.group(2) is not None else low
            values.extend(range(low, high + 1))
    if not values:
        raise UsageError(
            f"`--classes` selects no labels. Received: classes={spec!r}", "use e.g. --classes 5-9"
        )
    return sorted(set(values))


def parse_image_size(spec) -> tuple[int, int] | None:
    """Parse an image size: "32x32" -> (32, 32), "28" -> (28, 28); (h, w) and None pass through.

    Raises:
        UsageError: a malformed size.
    """
    if spec is None:
        return None
    if isinstance(spec, (tuple, list)):
        parts = list(spec)
    else:
        parts = re.split(r"[x×,]", str(spec).strip().lower())
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise UsageError(
            f"`--image-size` must be HEIGHTxWIDTH. Received: image_size={spec!r}",
            "use e.g. --image-size 32x32",
        )
    return size  # type: ignore[return-value]


def _positive(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"`{flag}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


# ---------------------------------------------------------------- labels


def _normalize_labels(y: np.ndarray, where: str) -> tuple[np.ndarray, list[str] | None]:
    """int64 class ids or float32 targets; string labels become ids of their sorted names."""
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return y.astype(np.int64), None
    if y.dtype.kind in "iu":
        if y.size and int(y.min()) < 0:
            raise DataError(
                f"{where}: label {int(y.min())} is negative; class labels must be 0..k-1",
                "relabel the classes from 0",
            )
        return y.astype(np.int64), None
    if y.dtype.kind == "f":
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            row = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
            raise DataError(
                f"{where}: NaN or Inf in the labels (first at row {row})", "clean the labels"
            )
        return y, None
    if y.dtype.kind in "US" and y.ndim == 1:
        names = sorted({str(v.decode() if isinstance(v, bytes) else v) for v in y})
        lookup = {n: i for i, n in enumerate(names)}
        ids = np.array(
            [lookup[str(v.decode() if isinstance(v, bytes) else v)] for v in y], dtype=np.int64
        )
        return ids, names
    raise DataError(
        f"{where}: labels have dtype {y.dtype}; expected integers, floats or class names",
        "store the labels as integers (classes) or floats (regression targets)",
    )


def _read_labels_file(path: Path) -> np.ndarray:
    from reuse.data import idx

    if not path.exists():
        raise DataError(f"{path}: no such labels file", "check the --labels path")
    suffix = path.suffix.lower()
    if idx.is_idx(path):
        return idx.read_idx(path)
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix in (".txt", ".csv"):
        with open(path) as f:
            fields = [(line.split(",") if suffix == ".csv" else line.split()) for line in f]
        values = [r[0].strip() for r in fields if r and r[0].strip()]
        if values and not _is_number(values[0]):
            values = values[1:]  # a header line
        return _column(values)
    raise DataError(
        f"{path}: unsupported labels file '{path.suffix}'", "use .npy, .txt, .csv or IDX labels"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column(values: list[str]) -> np.ndarray:
    """Strings of one CSV column -> int64 when all integers, float32 when all numbers, else str."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    if all(_is_number(v) for v in values):
        return np.array([float(v) for v in values], dtype=np.float32)
    return np.array(values, dtype=str)


# ---------------------------------------------------------------- readers


@dataclass
class _Source:
    x: object
    y: np.ndarray | None
    identity: dict
    keys: dict = field(default_factory=dict)  # resolved options that shape the data
    class_names: list[str] | None = None
    scale: bool = False  # uint8 images: divide by 255 unless scale=False
    owner: _Owner | None = None


_X_GUESSES = ("x", "X", "x_train", "X_train", "features", "images", "inputs", "data")
_Y_GUESSES = ("y", "Y", "y_train", "Y_train", "labels", "label", "targets", "target")


def _guess_keys(
    keys: list[str], x_key, y_key, split, where: str, present: list[str]
) -> tuple[str, str | None]:
    if split is not None:
        x_guesses = (f"x_{split}", f"X_{split}", f"{split}/x", f"{split}/X", f"{split}/images")
        y_guesses = (f"y_{split}", f"Y_{split}", f"{split}/y", f"{split}/labels")
    else:
        x_guesses, y_guesses = _X_GUESSES, _Y_GUESSES
    listing = ", ".join(present) or "none"
    if x_key is not None:
        if x_key not in keys:
            raise DataError(
                f"{where} has no key '{x_key}' (keys present: {listing})",
                "pass one of them with --x-key",
            )
        xk = x_key
    else:
        xk = next((k for k in x_guesses if k in keys), None)
        if xk is None and split is None and len(keys) == 1:
            xk = keys[0]
        if xk is None:
            raise DataError(
                f"{where} has no inputs under {', '.join(x_guesses)} (keys present: {listing})",
                "name the inputs with --x-key",
            )
    if y_key is not None:
        if y_key not in keys:
            raise DataError(
                f"{where} has no key '{y_key}' (keys present: {listing})",
                "pass one of them with --y-key",
            )
        return xk, y_key
    paired = xk.replace("x", "y", 1).replace("X", "y", 1) if xk.lower().startswith("x") else None
    candidates = ([paired, paired.replace("y", "Y", 1)] if paired else []) + list(y_guesses)
    yk = next((k for k in candidates if k in keys and k != xk), None)
    return xk, yk


def _check_lengths(x, y, where: str) -> None:
    if y is not None and len(y) != len(x):
        raise DataError(
            f"{where}: the inputs have {len(x)} rows but the labels have {len(y)}",
            "inputs and labels must have one row each per sample",
        )


def _npz_member(path: Path, key: str):
    """A memmap of an uncompressed (np.savez) member, or None when it must be loaded."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            start = (
                info.header_offset
                + 30
                + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little")
            )
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
        if fortran or dtype.hasobject or not shape:
            return None
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def _read_npz(p: Path, x_key, y_key, split) -> _Source:
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{p}: cannot read as .npz ({err})", "check that the file is complete"
        ) from None
    with npz:
        keys = list(npz.keys())
        xk, yk = _guess_keys(keys, x_key, y_key, split, str(p), keys)
        x = _npz_member(p, xk)
        if x is None:
            x = npz[xk]
        y = npz[yk] if yk else None
    return _Source(x, y, _identity([p]), {"x_key": xk, "y_key": yk})


def _read_npy(p: Path, labels) -> _Source:
    try:
        x = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{p}: cannot read as .npy ({err})", "check that the file is complete"
        ) from None
    y = None
    if labels is not None:
        y = _read_labels_file(Path(labels))
    return _Source(x, y, _identity([p], Path(labels) if labels is not None else None))


def _h5_keys(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_h5(p: Path, x_key, y_key, split) -> _Source:
    import h5py

    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise DataError(
            f"{p}: cannot read as HDF5 ({err})", "check that the file is complete"
        ) from None
    owner = _Owner(f)
    try:
        keys = _h5_keys(f)
        xk, yk = _guess_keys(keys, x_key, y_key, split, str(p), keys)
        x = f[xk]
        y = np.asarray(f[yk]) if yk else None
        if x.ndim == 0:
            raise DataError(
                f"{p}: '{xk}' is a scalar, not rows of inputs", "name the inputs with --x-key"
            )
    except BaseException:
        owner.close()
        raise
    return _Source(x, y, _identity([p]), {"x_key": xk, "y_key": yk}, owner=owner)


def _read_csv(p: Path, label_col) -> _Source:
    with open(p, newline="") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{p} holds no rows", "check the file")
    header = None
    if not all(_is_number(c) or not c.strip() for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError(
                f"{p}: line {i + 1 + (header is not None)} has {len(r)} fields, expected {width}",
                "fix the file",
            )
    col = None
    if label_col is not None:
        if header and str(label_col) in header:
            col = header.index(str(label_col))
        elif re.fullmatch(r"-?\d+", str(label_col)):
            col = int(label_col)
            if not -width <= col < width:
                raise DataError(
                    f"{p} has {width} columns; --label-col {label_col} is out of range",
                    "columns count from 0",
                )
            col %= width
        else:
            listing = ", ".join(header) if header else f"{width} unnamed columns"
            raise DataError(
                f"{p} has no column '{label_col}' (columns: {listing})",
                "pass a name or an index with --label-col",
            )
    elif header:
        col = next(
            (header.index(n) for n in ("label", "labels", "y", "target", "class") if n in header),
            None,
        )
    feature_cols = [c for c in range(width) if c != col]
    x = np.empty((len(rows), len(feature_cols)), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(feature_cols):
            cell = r[c].strip()
            try:
                x[i, j] = float(cell) if cell else np.nan
            except ValueError:
                name = f"'{header[c]}'" if header else str(c)
                raise DataError(
                    f"{p}: line {i + 1 + (header is not None)}, column {name}: '{cell}' is not a number",
                    "input columns must be numeric (name the label column with --label-col)",
                ) from None
    y = _column([r[col].strip() for r in rows]) if col is not None else None
    keys = {"label_col": header[col] if header and col is not None else col}
    return _Source(x, y, _identity([p]), keys)


class _ImageFolder:
    """Images decoded on access: array-like with shape (n, h, w[, 3]) and dtype uint8."""

    dtype = np.dtype(np.uint8)

    def __init__(self, files: list[Path], size: tuple[int, int] | None, fixed: bool, mode: str):
        self.files, self.size, self.fixed, self.mode = files, size, fixed, mode
        channels = (3,) if mode == "RGB" else ()
        self.shape = (len(files), *size, *channels)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index):
        positions = np.arange(len(self.files))[index]
        if np.ndim(positions) == 0:
            return self._decode(self.files[int(positions)])
        return np.stack([self._decode(self.files[int(i)]) for i in positions])

    def _decode(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im = im.convert(self.mode)
                h, w = self.size
                if im.size != (w, h):
                    if not self.fixed:
                        raise DataError(
                            f"{path} is {im.size[1]}x{im.size[0]}, the other images {h}x{w}",
                            f"pass --image-size {h}x{w} to resize every image",
                        )
                    im = im.resize((w, h), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(
                f"{path}: cannot decode the image ({err})", "remove or replace the file"
            ) from None


def _read_image_folder(p: Path, image_size) -> _Source:
    from reuse.core import report

    class_dirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{p} has no class sub-folders",
            "put the images of each class in a sub-folder named after it (cats/, dogs/)",
        )
    files, labels = [], []
    for label, d in enumerate(class_dirs):
        found = sorted(
            f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
        )
        if not found:
            report.warn(f"{d} holds no images (class {label} '{d.name}' will have no rows)")
        files.extend(found)
        labels.extend([label] * len(found))
    if not files:
        raise DataError(
            f"{p}: the class sub-folders hold no images ({', '.join(IMAGE_EXTENSIONS)})",
            "add images",
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(files[0]) as im:
            mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            first = (im.size[1], im.size[0])
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(
            f"{files[0]}: cannot decode the image ({err})", "remove or replace the file"
        ) from None
    x = _ImageFolder(files, image_size or first, image_size is not None, mode)
    return _Source(
        x,
        np.array(labels, dtype=np.int64),
        _folder_identity(p, files),
        {"image_size": f"{x.shape[1]}x{x.shape[2]}", "mode": mode},
        class_names=[d.name for d in class_dirs],
        scale=True,
    )


def _idx_labels_for(images: Path) -> Path | None:
    name = images.name
    for a, b in (
        ("images-idx3", "labels-idx1"),
        ("images.idx3", "labels.idx1"),
        ("images", "labels"),
    ):
        if a in name:
            stem = name.replace(a, b).removesuffix(".gz")
            for candidate in (images.with_name(stem), images.with_name(stem + ".gz")):
                if candidate.exists():
                    return candidate
            return None
    return None


def _read_idx_files(images: Path, labels: Path | None) -> _Source:
    from reuse.data import idx

    x = idx.open_idx(images)
    y = idx.read_idx(labels) if labels is not None and idx.is_idx(labels) else None
    if labels is not None and y is None:
        y = _read_labels_file(labels)
    return _Source(x, y, _identity([images], labels), scale=x.dtype == np.uint8)


def _idx_folder_images(p: Path, split: str) -> Path | None:
    prefix = {"train": "train", "test": "t10k"}.get(split, split)
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"):
        for candidate in (p / stem, p / f"{stem}.gz"):
            if candidate.exists():
                return candidate
    return None


_KIND_NAMES = {
    "idx-folder": "a folder of MNIST IDX files",
    "image-folder": "a folder of images",
    "idx": "an IDX file",
    "npz": "a .npz file",
    "npy": "a .npy file",
    "h5": "an HDF5 file",
    "csv": "a CSV file",
}
_FLAG_USES = {
    "labels": ".npy inputs and IDX files",
    "x_key": ".npz and HDF5 files",
    "y_key": ".npz and HDF5 files",
    "label_col": "CSV files",
    "image_size": "folders of images",
    "split": "folders of MNIST files and .npz/HDF5 files with x_train/x_test keys",
}


def _kind(p: Path) -> str:
    """Which reader a path needs (`reuse.formats.paths.classify`): any HDF5 file is read as
    data, any folder without IDX files as a folder of images."""
    from reuse.formats.paths import HDF5_KINDS, PathKind, classify

    kind = classify(p)
    if kind is PathKind.IDX_FOLDER:
        return "idx-folder"
    if p.is_dir():
        return "image-folder"
    readers = {PathKind.IDX: "idx", PathKind.NPZ: "npz", PathKind.NPY: "npy", PathKind.CSV: "csv"}
    readers.update(dict.fromkeys(HDF5_KINDS, "h5"))
    if kind not in readers:
        raise DataError(f"{p}: unsupported data format '{p.suffix or p.name}'", FORMATS_HINT)
    return readers[kind]


# ---------------------------------------------------------------- selection


def _select(y, n: int, classes, per_class, limit, seed, where: str):
    """(indices, y, class_map, kept classes) after classes -> per_class -> limit."""
    from reuse.core import report

    indices = np.arange(n, dtype=np.int64)
    class_map = None
    kept = None
    needs = [
        flag for flag, v in (("--classes", classes), ("--per-class", per_class)) if v is not None
    ]
    if needs and y is None:
        raise DataError(
            f"{where} has no labels; {' and '.join(needs)} {'need' if len(needs) > 1 else 'needs'} them",
            "pass the labels (e.g. --labels FILE)",
        )
    if needs and (y.dtype.kind not in "iu" or y.ndim != 1):
        kind = (
            f"floats (dtype {y.dtype}, regression targets)"
            if y.dtype.kind == "f"
            else f"of shape {y.shape[1:]} per row (dtype {y.dtype})"
        )
        verb = "need" if len(needs) > 1 else "needs"
        raise DataError(
            f"{where}: the labels are {kind}; {' and '.join(needs)} {verb} one integer class label per row",
            "store class labels as integers",
        )
    if classes is not None:
        wanted = parse_classes(classes)
        mask = np.isin(y, wanted)
        if not mask.any():
            present = np.unique(y)
            shown = (
                f"{present.min()}..{present.max()}"
                if len(present) > 12
                else ", ".join(map(str, present))
            )
            raise DataError(
                f"{where}: --classes {classes} selects no rows (labels present: {shown})",
                "pick classes that the data has",
            )
        missing = sorted(set(wanted) - set(np.unique(y[mask]).tolist()))
        if missing:
            report.warn(
                f"{where}: no rows with label(s) {', '.join(map(str, missing))} of --classes {classes}"
            )
        class_map = {int(c): i for i, c in enumerate(wanted)}
        indices = indices[mask]
        y = np.searchsorted(np.array(wanted), y[mask]).astype(np.int64)
        kept = wanted
    rng = np.random.default_rng(seed) if seed is not None else None
    if per_class is not None:
        chosen = []
        short = []
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            if rng is not None:
                rows = rng.permutation(rows)
            if len(rows) < per_class:
                short.append(f"{c} ({len(rows)})")
            chosen.append(rows[:per_class])
        if short:
            report.warn(f"{where}: fewer than {per_class} rows for class(es) {', '.join(short)}")
        pos = np.sort(np.concatenate(chosen))
        indices, y = indices[pos], y[pos]
    if limit is not None and limit < len(indices):
        pos = (
            np.sort(rng.choice(len(indices), limit, replace=False))
            if rng is not None
            else np.arange(limit)
        )
        indices = indices[pos]
        y = None if y is None else y[pos]
    return indices, y, class_map, kept


def _selection_string(keys: dict, opts: dict) -> str:
    """Canonical `k=v;...` of what shapes the rows and values (defaults and None left out)."""
    merged = {k: v for k, v in {**keys, **opts}.items() if v is not None}
    if merged.get("scale") is True:
        merged.pop("scale")
    if "per_class" not in merged and "limit" not in merged:
        merged.pop("seed", None)  # the seed changes nothing then
    return ";".join(f"{k}={merged[k]}" for k in sorted(merged))


# ---------------------------------------------------------------- entry point


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
        x_key, y_key: array names in .npz/HDF5 files (default: guessed; see the module doc).
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
    per_class = _positive("per_class", per_class)
    limit = _positive("limit", limit)
    image_size = parse_image_size(image_size)
    if classes is not None:
        parse_classes(classes)  # malformed specs are usage errors, before any reading
    if split is not None and split not in ("train", "test"):
        raise UsageError(f"`--split` must be train or test. Received: split={split!r}")

    kind = _kind(p)
    allowed = {
        "idx-folder": {"labels", "split"},
        "image-folder": {"image_size"},
        "idx": {"labels"},
        "npz": {"x_key", "y_key", "split"},
        "npy": {"labels"},
        "h5": {"x_key", "y_key", "split"},
        "csv": {"label_col"},
    }[kind]
    given = {"labels": labels, "x_key": x_key, "y_key": y_key, "label_col": label_col}
    given.update(image_size=image_size, split=split)
    stray = [k for k, v in given.items() if v is not None and k not in allowed]
    if stray:
        flag = "--" + stray[0].replace("_", "-")
        raise UsageError(
            f"{flag} cannot be used with {p} ({_KIND_NAMES[kind]})",
            f"{flag} is for {_FLAG_USES[stray[0]]}",
        )

    if kind == "idx-folder":
        images = _idx_folder_images(p, split or "train")
        if images is None:
            example = "t10k" if split == "test" else "train"
            raise DataError(
                f"{p} has no {split or 'train'} images file (e.g. {example}-images-idx3-ubyte.gz)",
                "check the folder or --split",
            )
        source = _read_idx_files(
            images, Path(labels) if labels is not None else _idx_labels_for(images)
        )
        source.keys["split"] = split or "train"
    elif kind == "image-folder":
        source = _read_image_folder(p, image_size)
    elif kind == "idx":
        source = _read_idx_files(p, Path(labels) if labels is not None else _idx_labels_for(p))
    elif kind == "npz":
        source = _read_npz(p, x_key, y_key, split)
    elif kind == "npy":
        source = _read_npy(p, labels)
    elif kind == "h5":
        source = _read_h5(p, x_key, y_key, split)
    else:
        source = _read_csv(p, label_col)

    try:
        return _finish(p, source, classes, per_class, limit, seed, scale, require_labels)
    except BaseException:
        if source.owner is not None:
            source.owner.close()
        raise


def _finish(
    p: Path, source: _Source, classes, per_class, limit, seed, scale, require_labels
) -> Dataset:
    where = str(p)
    x, y = source.x, source.y
    if getattr(x, "ndim", 1) < 1 or len(x) == 0:
        raise DataError(f"{where} holds no rows of inputs", "check the file")
    class_names = source.class_names
    if y is not None:
        y, names = _normalize_labels(y, source.identity.get("labels", where))
        class_names = names or class_names
        _check_lengths(x, y, where)
    indices, y, class_map, kept = _select(y, len(x), classes, per_class, limit, seed, where)
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
    identity["selection"] = _selection_string(
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
