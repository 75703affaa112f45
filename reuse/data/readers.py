"""One reader per data format, and which reader a path needs.

Each reader turns a path into a `Source`: the inputs `x` (array-like, read lazily where the
format allows), the labels `y` (in memory, or None), the file identity and the resolved options
that shape the data. `dataset.load_data` then selects rows and wraps the source in a Dataset.

    .npz          keys x/y, X/y, x_train/y_train, features/labels... (or x_key/y_key);
                  np.savez (uncompressed) members are memory-mapped, savez_compressed ones
                  are decompressed into memory
    .npy          inputs only, memory-mapped; labels from `labels=` (.npy, .txt, .csv, IDX)
    .h5/.hdf5     x_key/y_key (guesses x, X, features, images / y, labels); x read in slices
    .csv          numeric columns -> float32; label column by name or index (label_col);
                  read into memory
    folder        one sub-folder per class of images, decoded lazily with Pillow;
                  class names sorted -> 0..k-1
    IDX           MNIST files (gzipped or not): the images file finds its labels file; a
                  folder of the four MNIST files is read with split="train"|"test"

To add a format: a `_read_<format>` function returning a Source, a branch in `_kind`, and its
flags in `_ALLOWED` and `_KIND_NAMES`.
"""

from __future__ import annotations

import csv
import re
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, UsageError
from reuse.core.unreadable import (
    DECODE_ERRORS,
    NOT_NUMPY,
    PICKLED,
    explain,
    numpy_signature_missing,
)
from reuse.data.identity import files_identity, folder_identity

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


class Owner:
    """Keeps an open file (HDF5) alive while any Dataset made from it exists; closes it after."""

    def __init__(self, handle):
        self.handle = handle
        self._finalizer = weakref.finalize(self, handle.close)

    def close(self) -> None:
        self._finalizer()


def normalize_labels(y: np.ndarray, where: str) -> tuple[np.ndarray, list[str] | None]:
    """(labels, class names): int64 class ids, float32 targets, or ids of sorted string names.

    Raises:
        DataError: negative ids, NaN/Inf targets, or labels of another dtype.
    """
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


@dataclass
class Source:
    """What a reader found: inputs, labels, identity and the options that shaped them."""

    x: object
    y: np.ndarray | None
    identity: dict
    keys: dict = field(default_factory=dict)  # resolved options that shape the data
    class_names: list[str] | None = None
    scale: bool = False  # uint8 images: divide by 255 unless scale=False
    owner: Owner | None = None


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


def _read_npz(p: Path, x_key, y_key, split) -> Source:
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, *DECODE_ERRORS) as err:
        raise unreadable(p, ".npz", err) from None
    with npz:
        keys = list(npz.keys())
        xk, yk = _guess_keys(keys, x_key, y_key, split, str(p), keys)
        x = _npz_member(p, xk)
        if x is None:
            x = npz[xk]
        y = npz[yk] if yk else None
    return Source(x, y, files_identity([p]), {"x_key": xk, "y_key": yk})


def _read_npy(p: Path, labels) -> Source:
    try:
        x = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, *DECODE_ERRORS) as err:
        raise unreadable(p, ".npy", err) from None
    y = None
    if labels is not None:
        y = _read_labels_file(Path(labels))
    return Source(x, y, files_identity([p], Path(labels) if labels is not None else None))


def unreadable(p: Path, label: str, err: BaseException) -> DataError:
    """The DataError for a file that cannot be decoded as `label` (".npz", "CSV", ...): what
    is wrong with it (`reuse.core.unreadable.explain`) and what to do."""
    explained = explain(err)
    if explained == PICKLED and label in (".npz", ".npy"):
        start = numpy_signature_missing(p)
        if start is not None:
            explained = (NOT_NUMPY[0].format(start=start), NOT_NUMPY[1])
    if explained is not None:
        return DataError(f"{p}: cannot read as {label}: {explained[0]}", explained[1])
    reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return DataError(
        f"{p}: cannot read as {label} ({reason})",
        "check that the file is complete and in that format",
    )


def _h5_keys(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_h5(p: Path, x_key, y_key, split) -> Source:
    import h5py

    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise unreadable(p, "HDF5", err) from None
    owner = Owner(f)
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
    return Source(x, y, files_identity([p]), {"x_key": xk, "y_key": yk}, owner=owner)


def _read_csv(p: Path, label_col) -> Source:
    with open(p, newline="", encoding="utf-8-sig") as f:
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
    return Source(x, y, files_identity([p]), keys)


class ImageFolder:
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


def _read_image_folder(p: Path, image_size) -> Source:
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
    x = ImageFolder(files, image_size or first, image_size is not None, mode)
    return Source(
        x,
        np.array(labels, dtype=np.int64),
        folder_identity(p, files),
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


def _read_idx_files(images: Path, labels: Path | None) -> Source:
    from reuse.data import idx

    x = idx.open_idx(images)
    y = idx.read_idx(labels) if labels is not None and idx.is_idx(labels) else None
    if labels is not None and y is None:
        y = _read_labels_file(labels)
    return Source(x, y, files_identity([images], labels), scale=x.dtype == np.uint8)


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


_ALLOWED = {
    "idx-folder": {"labels", "split"},
    "image-folder": {"image_size"},
    "idx": {"labels"},
    "npz": {"x_key", "y_key", "split"},
    "npy": {"labels"},
    "h5": {"x_key", "y_key", "split"},
    "csv": {"label_col"},
}


def open_source(
    p: Path,
    *,
    labels=None,
    x_key: str | None = None,
    y_key: str | None = None,
    label_col: str | int | None = None,
    image_size: tuple[int, int] | None = None,
    split: str | None = None,
) -> Source:
    """Read `p` with the reader its kind needs; options are as in `load_data` (already parsed).

    Raises:
        UsageError: an option that this kind of data does not take (e.g. --labels with .npz).
        DataError: an unsupported format, or a file the reader cannot make sense of.
    """
    kind = _kind(p)
    given = {"labels": labels, "x_key": x_key, "y_key": y_key, "label_col": label_col}
    given.update(image_size=image_size, split=split)
    stray = [k for k, v in given.items() if v is not None and k not in _ALLOWED[kind]]
    if stray:
        flag = "--" + stray[0].replace("_", "-")
        raise UsageError(
            f"{flag} cannot be used with {p} ({_KIND_NAMES[kind]})",
            f"{flag} is for {_FLAG_USES[stray[0]]}",
        )

    try:
        return _read(p, kind, labels, x_key, y_key, label_col, image_size, split)
    except DataError:
        raise
    except DECODE_ERRORS as err:
        raise unreadable(p, _KIND_NAMES[kind], err) from None
    except (ValueError, OSError) as err:
        # NumPy's, gzip's and h5py's decoding errors; an OSError with an errno (a missing or
        # unreadable file) is the CLI's to name.
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise unreadable(p, _KIND_NAMES[kind], err) from None


def _read(p: Path, kind: str, labels, x_key, y_key, label_col, image_size, split) -> Source:
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
        return source
    if kind == "image-folder":
        return _read_image_folder(p, image_size)
    if kind == "idx":
        return _read_idx_files(p, Path(labels) if labels is not None else _idx_labels_for(p))
    if kind == "npz":
        return _read_npz(p, x_key, y_key, split)
    if kind == "npy":
        return _read_npy(p, labels)
    if kind == "h5":
        return _read_h5(p, x_key, y_key, split)
    return _read_csv(p, label_col)
