"""What kind of file a path is: the one classifier every reader and command asks.

`classify(path)` answers with a `PathKind`, from what a folder holds, a file's name and, for
HDF5 files only, the file's root attributes (the name `.h5` alone does not say whether it holds
a model, weights, a feature cache or data). The caller decides what a kind means in its
context: a `.npz` file is weights to `reuse inspect` and `import-weights`, data to `finetune`.

Rules, in order:

- a TensorFlow checkpoint: a prefix whose `.index` file exists (`model.ckpt`, the prefix need
  not exist itself), any of its files (`.index`, `.data-*`, `.meta`), or a folder with a
  `checkpoint` state file or `.index` files (`checkpoint_prefix` resolves it);
- a missing path: MISSING;
- a folder: a SavedModel (`saved_model.pb` or `.pbtxt` inside; legacy tf.keras when it has
  `keras_metadata.pb`, else a Keras 3 `model.export()`), a folder of MNIST IDX files, or any
  other folder (IMAGE_FOLDER: the data readers take it as images, one sub-folder per class);
- a file, by name: a stray checkpoint file (`.ckpt`, `.meta`, `.data-*` without the prefix's
  `.index`), MNIST IDX (`*idx*` ending `.gz`, `.idx` or holding `-ubyte`), `.keras`,
  `.weights.h5`, `.npz`, `.npy`, `.csv`, `.safetensors`, `.onnx`, PyTorch `.pt` / `.pth` / `.bin`;
- `.h5` / `.hdf5` / `.hdf`, by root attributes: a feature cache (`reuse_feature_cache`), a full
  model (`model_config`), weights only (`layer_names`, or a `model_weights`, `layers` or `vars`
  group), else HDF5 (data, or a file h5py cannot read: its reader says why).

Only HDF5 files are opened (h5py is imported then, never for other kinds); `.keras` files are
classified by name, and their loaders check the archive.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from pathlib import Path

from reuse.core.errors import ModelLoadError

# The root attribute that marks an HDF5 file as a reuse feature cache (its format version).
CACHE_MARK = "reuse_feature_cache"

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
H5_SUFFIXES = (".h5", ".hdf5", ".hdf")

_CKPT_SUFFIX = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")
_CKPT_PART = re.compile(r"\.(ckpt|meta|data-\d+-of-\d+)$")


class PathKind(str, enum.Enum):
    """What a path is. The value is a short stable name (for messages and JSON)."""

    KERAS = "keras"  # a .keras zip archive (Keras 3 model.save)
    H5_MODEL = "h5_model"  # an HDF5 full model (architecture + weights)
    WEIGHTS_H5 = "weights_h5"  # Keras weights without architecture (.weights.h5, tf.keras 2 .h5)
    SAVEDMODEL = "savedmodel"  # a legacy tf.keras SavedModel folder
    KERAS_EXPORT = "keras_export"  # a Keras 3 model.export() SavedModel folder
    TF_CHECKPOINT = "tf_checkpoint"  # a TensorFlow checkpoint (prefix, one of its files, folder)
    CHECKPOINT_PART = "checkpoint_part"  # .ckpt/.meta/.data-* without the prefix's .index
    TORCH = "torch"  # a PyTorch file (.pt, .pth, .bin)
    SAFETENSORS = "safetensors"
    ONNX = "onnx"  # an ONNX model: its initializers are weights
    NPZ = "npz"  # a NumPy archive: weights or data, by the caller's context
    NPY = "npy"
    CSV = "csv"
    IDX = "idx"  # an MNIST IDX file (gzip-compressed or not)
    FEATURE_CACHE = "feature_cache"  # an HDF5 feature cache (reuse cache-features)
    HDF5 = "hdf5"  # any other HDF5 file: data, or one h5py cannot read
    IDX_FOLDER = "idx_folder"  # a folder holding MNIST IDX files
    IMAGE_FOLDER = "image_folder"  # any other folder: images, one sub-folder per class
    MISSING = "missing"  # nothing at the path (and no checkpoint prefix)
    UNKNOWN = "unknown"  # a file of none of these kinds


# Kinds that hold models (architecture and weights) that `load_model` reads without --arch.
MODEL_KINDS = (PathKind.KERAS, PathKind.H5_MODEL, PathKind.SAVEDMODEL, PathKind.KERAS_EXPORT)
# Kinds that hold weights without an architecture (NPZ: when the caller reads weights).
WEIGHT_KINDS = (
    PathKind.WEIGHTS_H5,
    PathKind.TF_CHECKPOINT,
    PathKind.CHECKPOINT_PART,
    PathKind.TORCH,
    PathKind.SAFETENSORS,
    PathKind.ONNX,
    PathKind.NPZ,
)
# Kinds of files an HDF5 reader opens (what the `.h5` name alone promises).
HDF5_KINDS = (PathKind.H5_MODEL, PathKind.WEIGHTS_H5, PathKind.FEATURE_CACHE, PathKind.HDF5)


def classify(path: str | os.PathLike) -> PathKind:
    """What kind of file or folder `path` is (see the module doc for the rules).

    Example:
        >>> classify("models/digits_0to4.keras")
        <PathKind.KERAS: 'keras'>
        >>> classify("runs/model.ckpt")  # model.ckpt.index exists
        <PathKind.TF_CHECKPOINT: 'tf_checkpoint'>

    Args:
        path: a file, a folder, or a TensorFlow checkpoint prefix.

    Returns:
        A PathKind; never raises for a missing or unreadable path (MISSING, HDF5, UNKNOWN).
    """
    p = Path(path)
    if p.is_dir():
        return _classify_folder(p)
    if checkpoint_prefix(p) is not None:
        return PathKind.TF_CHECKPOINT
    if not p.exists():
        return PathKind.MISSING
    name = p.name.lower()
    if _CKPT_PART.search(name):
        return PathKind.CHECKPOINT_PART
    if is_idx_name(name):
        return PathKind.IDX
    if name.endswith(".keras"):
        return PathKind.KERAS
    if name.endswith(".weights.h5"):
        return PathKind.WEIGHTS_H5
    if name.endswith(H5_SUFFIXES):
        return _classify_h5(p)
    by_suffix = {
        ".npz": PathKind.NPZ,
        ".npy": PathKind.NPY,
        ".csv": PathKind.CSV,
        ".safetensors": PathKind.SAFETENSORS,
        ".onnx": PathKind.ONNX,
        **dict.fromkeys(TORCH_SUFFIXES, PathKind.TORCH),
    }
    return by_suffix.get(p.suffix.lower(), PathKind.UNKNOWN)


def _classify_folder(p: Path) -> PathKind:
    if (p / "saved_model.pb").exists() or (p / "saved_model.pbtxt").exists():
        return PathKind.SAVEDMODEL if (p / "keras_metadata.pb").exists() else PathKind.KERAS_EXPORT
    if checkpoint_prefix(p) is not None:
        return PathKind.TF_CHECKPOINT
    if any(is_idx_name(f.name) for f in p.iterdir() if f.is_file()):
        return PathKind.IDX_FOLDER
    return PathKind.IMAGE_FOLDER


def _classify_h5(p: Path) -> PathKind:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            if CACHE_MARK in f.attrs:
                return PathKind.FEATURE_CACHE
            if "model_config" in f.attrs:
                return PathKind.H5_MODEL
            if "layer_names" in f.attrs or any(k in f for k in ("model_weights", "layers", "vars")):
                return PathKind.WEIGHTS_H5
    except OSError:
        pass  # not HDF5, damaged or locked: the reader opens it again and says why
    return PathKind.HDF5


@contextlib.contextmanager
def open_hdf5(path: str | os.PathLike):
    """Open an HDF5 file read-only (a context manager yielding the h5py.File).

    Raises:
        ModelLoadError: h5py cannot open it (not HDF5, truncated, locked).
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ModelLoadError(
            f"{path} is not a readable HDF5 file ({hdf5_reason(err)})",
            "check that the file is complete",
        ) from None
    with handle:
        yield handle


def hdf5_reason(err: BaseException, limit: int = 160) -> str:
    """Why h5py could not open a file, in a few words: the first line of `err` without h5py's
    "Unable to synchronously open file (...)" wrapper, cut at a word with "..." past `limit`.

    >>> hdf5_reason(OSError("Unable to synchronously open file (truncated file: eof = 10)"))
    'truncated file: eof = 10'
    """
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    inner = re.fullmatch(r"Unable to (?:synchronously )?open file \((.*)\)", line)
    reason = inner.group(1) if inner else line
    if len(reason) <= limit:
        return reason
    return reason[:limit].rsplit(" ", 1)[0] + " ..."


def is_idx_name(path: str | os.PathLike) -> bool:
    """Whether a file name is an MNIST IDX name: `*idx*` ending `.gz` or `.idx`, or with `-ubyte`."""
    name = Path(path).name.lower()
    return "idx" in name and (name.endswith(".gz") or "-ubyte" in name or name.endswith(".idx"))


def checkpoint_prefix(path: str | os.PathLike) -> Path | None:
    """The TensorFlow checkpoint prefix that `path` names, or None when it names none.

    Accepts the prefix itself (`model.ckpt`), any of its files (`.index`, `.data-*`, `.meta`)
    or a folder holding a `checkpoint` file (the latest checkpoint in it) or `.index` files
    (the newest one).
    """
    p = Path(path)
    if p.is_dir():
        state = p / "checkpoint"
        if state.exists():
            match = re.search(
                r'model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace")
            )
            if match:
                prefix = Path(match.group(1))
                prefix = prefix if prefix.is_absolute() else p / prefix
                if Path(str(prefix) + ".index").exists():
                    return prefix
        indexes = sorted(p.glob("*.index"), key=lambda f: f.stat().st_mtime)
        return Path(str(indexes[-1])[: -len(".index")]) if indexes else None
    stripped = strip_checkpoint_suffix(p)
    if Path(str(stripped) + ".index").exists():
        return stripped
    return None


def strip_checkpoint_suffix(path: str | os.PathLike) -> Path:
    """`model.ckpt.index` / `.meta` / `.data-00000-of-00001` -> `model.ckpt` (others unchanged)."""
    return Path(_CKPT_SUFFIX.sub("", str(path)))
