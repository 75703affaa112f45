"""Read weight-only files: the tensors of a file that holds weights but no architecture.

Formats (chosen by what the path is: `reuse.formats.paths.classify`):

- Keras `.weights.h5` (Keras 3: `layers/<class>/vars/<i>`, whose `vars` group names the
  layer; tf.keras 2: `<layer>/<layer>/kernel:0`);
- `.npz` (read with `allow_pickle=False`);
- `.safetensors`;
- PyTorch state dicts `.pt` / `.pth` / `.bin` (read with `torch.load(weights_only=True)`; a
  file that needs pickled code is refused, never unpickled), including full checkpoints
  such as `{"state_dict": ..., "optimizer": ..., "epoch": ...}`;
- ONNX models `.onnx`: their graph initializers (read with the `onnx` package, in
  `reuse.formats.onnx_file`; the graph is not run);
- TensorFlow checkpoints, TF1 name-based (a `Saver` prefix such as `model.ckpt`, with its
  `.index` / `.data-*` files) and TF2 object-based (`tf.train.Checkpoint`).

Every tensor gets a `kind`: "weight", "optimizer" (optimizer slots and state) or "bookkeeping"
(step counters and other values that are not model weights), so that importers and
`reuse inspect` (`reuse.inspection.weights`) can report the model's weights apart from the rest.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reuse.core.errors import ModelLoadError
from reuse.core.unreadable import NOT_NUMPY, explain, numpy_signature_missing
from reuse.formats.paths import (
    HDF5_KINDS,
    PathKind,
    checkpoint_prefix,
    classify,
    open_hdf5,
    strip_checkpoint_suffix,
)

TORCH_INSTALL = "pip install 'keras-reuse[torch]' (or: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
_TF1_SLOTS = re.compile(
    r"/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|"
    r"ExponentialMovingAverage|Nadam|Nadam_\d+|Adamax|Adamax_\d+)$"
)
_TF_BOOKKEEPING = {
    "global_step",
    "beta1_power",
    "beta2_power",
    "save_counter",
    "step",
    "iter",
    "iterations",
}


@dataclass
class TensorInfo:
    """One tensor of a weight file; `value` is None when only names were read."""

    name: str
    shape: tuple
    dtype: str
    kind: str = "weight"  # "weight", "optimizer", "bookkeeping"
    layer: str | None = None  # the Keras layer (Keras weight files): "hidden1" or "outer/inner"
    index: int | None = None  # position among the layer's variables (Keras weight files)
    value: np.ndarray | None = None


@dataclass
class WeightFile:
    """What `read_weight_file` found: the tensors and what kind of file held them."""

    path: str
    format: (
        str  # "keras_h5", "keras_h5_legacy", "npz", "safetensors", "torch", "tf_checkpoint", "onnx"
    )
    layout: str  # "keras" (kernel (in, out)) or "torch" (weight (out, in))
    tensors: list[TensorInfo]
    notes: list[str]


FORMAT_TITLES = {
    "keras_h5": "Keras weights (.weights.h5)",
    "keras_h5_legacy": "tf.keras 2 weights (.h5)",
    "npz": "NumPy archive (.npz)",
    "safetensors": "safetensors",
    "torch": "PyTorch state dict",
    "tf_checkpoint": "TensorFlow checkpoint",
    "onnx": "ONNX model initializers",
}


def detect_format(path: str | os.PathLike) -> str:
    """The weight-file format of `path` (a key of FORMAT_TITLES), from `paths.classify`.

    Raises:
        ModelLoadError: the path is missing or is not a weight file reuse reads.
    """
    p = Path(path)
    kind = classify(p)
    if kind is PathKind.TF_CHECKPOINT:
        return "tf_checkpoint"
    if kind is PathKind.MISSING:
        raise ModelLoadError(f"{p}: no such file or folder", "check the path")
    simple = {
        PathKind.NPZ: "npz",
        PathKind.SAFETENSORS: "safetensors",
        PathKind.TORCH: "torch",
        PathKind.ONNX: "onnx",
    }
    if kind in simple:
        return simple[kind]
    if kind in HDF5_KINDS:
        return _h5_flavour(p)
    if kind is PathKind.CHECKPOINT_PART:
        raise ModelLoadError(
            f"{p}: no TensorFlow checkpoint files next to it (no {strip_checkpoint_suffix(p).name}.index)",
            "pass the checkpoint prefix whose .index and .data-* files exist, or a PyTorch .pt file",
        )
    raise ModelLoadError(
        f"{p}: not a weight file reuse reads ('{p.suffix or p.name}')",
        "use .weights.h5, .npz, .safetensors, .pt/.pth/.bin, .onnx or a TensorFlow checkpoint prefix",
    )


def _h5_flavour(p: Path) -> str:
    with open_hdf5(p) as f:
        if "layer_names" in f.attrs:
            return "keras_h5_legacy"
        if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
            return "keras_h5_legacy"
        if "layers" in f or "vars" in f:
            return "keras_h5"
        keys = list(f.keys())
    raise ModelLoadError(
        f"{p} is an HDF5 file without Keras weights (top-level keys: {', '.join(keys[:8]) or 'none'})",
        "pass a file written by model.save_weights('x.weights.h5')",
    )


def read_weight_file(path: str | os.PathLike, *, names_only: bool = False) -> WeightFile:
    """Read every tensor of a weight-only file, with its kind, layer and position.

    Example:
        >>> wf = read_weight_file("mlp.pt")
        >>> [t.name for t in wf.tensors][:2]
        ['fc1.weight', 'fc1.bias']

    Args:
        path: the file, or a TensorFlow checkpoint prefix / folder.
        names_only: read names, shapes and dtypes only (values stay None) where the format
            allows it without reading the data.

    Returns:
        A WeightFile.

    Raises:
        ModelLoadError: a missing, damaged or unsupported file, one that holds pickled code,
            or a PyTorch file when torch is not installed.
    """
    fmt = detect_format(path)
    reader = {
        "keras_h5": _read_keras_h5,
        "keras_h5_legacy": _read_keras_h5_legacy,
        "npz": _read_npz,
        "safetensors": _read_safetensors,
        "torch": _read_torch,
        "tf_checkpoint": _read_tf_checkpoint,
        "onnx": _read_onnx,
    }[fmt]
    return reader(Path(path), names_only)


def read_tensors(path: str | os.PathLike, *, names_only: bool = False) -> dict:
    """The tensors of a weight-only file by name: arrays, or TensorInfo when `names_only`.

    Example:
        >>> tensors = read_tensors("weights.npz")
        >>> tensors["hidden1/kernel"].shape
        (784, 300)

    Args:
        path: a `.weights.h5`, `.npz`, `.safetensors`, `.pt`/`.pth`/`.bin` file or a
            TensorFlow checkpoint prefix.
        names_only: return TensorInfo (name, shape, dtype, kind) without reading values.

    Returns:
        {name: np.ndarray} or {name: TensorInfo}.

    Raises:
        ModelLoadError: see `read_weight_file`.
    """
    wf = read_weight_file(path, names_only=names_only)
    if names_only:
        return {t.name: t for t in wf.tensors}
    return {t.name: t.value for t in wf.tensors}


def _info(name, array_or_shape, dtype=None, **extra) -> TensorInfo:
    if isinstance(array_or_shape, np.ndarray):
        a = array_or_shape
        return TensorInfo(name, tuple(int(d) for d in a.shape), str(a.dtype), value=a, **extra)
    return TensorInfo(name, tuple(int(d) for d in array_or_shape), str(dtype), **extra)


# --- Keras .weights.h5 ---------------------------------------------------------------------


def _read_keras_h5(p: Path, names_only: bool) -> WeightFile:
    """Keras 3 layout: groups named by class and order (`layers/dense_1/vars/0`).

    Keras 3.x writes the layer's real name as the `name` attribute of each `vars` group; the
    layer path joins those names for nested models. Files without it fall back to the group
    names (`dense_1`), which match the target only when its layers have the default names.
    """
    import h5py

    tensors: list[TensorInfo] = []
    notes: list[str] = []
    with h5py.File(p, "r") as f:

        def visit(group, h5_path: str, layer_path: list[str], out: list[TensorInfo]):
            if "vars" in group and isinstance(group["vars"], h5py.Group):
                vars_group = group["vars"]
                for key in sorted(
                    vars_group.keys(),
                    key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k),
                ):
                    ds = vars_group[key]
                    if not isinstance(ds, h5py.Dataset):
                        continue
                    name = f"{h5_path}/vars/{key}".lstrip("/")
                    layer = "/".join(layer_path) or None
                    index = int(key) if key.isdigit() else None
                    if names_only:
                        out.append(_info(name, ds.shape, ds.dtype, layer=layer, index=index))
                    else:
                        out.append(_info(name, np.asarray(ds[()]), layer=layer, index=index))
            for key in group:
                if key == "vars" or not isinstance(group[key], h5py.Group):
                    continue
                child = group[key]
                child_name = key
                if "vars" in child and isinstance(child["vars"], h5py.Group):
                    attr = child["vars"].attrs.get("name")
                    if attr is not None:
                        child_name = attr.decode() if isinstance(attr, bytes) else str(attr)
                # `layers` and `_layer_checkpoint_dependencies` are containers, not layers.
                is_container = key in ("layers", "_layer_checkpoint_dependencies")
                visit(
                    child,
                    f"{h5_path}/{key}",
                    layer_path if is_container else [*layer_path, child_name],
                    out,
                )

        for top in f:
            if isinstance(f[top], h5py.Group) and top != "vars":
                if top in ("layers", "_layer_checkpoint_dependencies"):
                    visit(f[top], top, [], tensors)
                else:
                    # optimizer state and other top-level objects: not layer weights
                    sub: list[TensorInfo] = []
                    visit(f[top], top, [top], sub)
                    for t in sub:
                        t.kind = "optimizer" if top == "optimizer" else "bookkeeping"
                        t.layer = None
                    tensors.extend(sub)
    if not tensors:
        notes.append("the file holds no tensors")
    return WeightFile(str(p), "keras_h5", "keras", tensors, notes)


def _read_keras_h5_legacy(p: Path, names_only: bool) -> WeightFile:
    """tf.keras 2 layout: a group per layer, `weight_names` such as `hidden1/kernel:0`."""
    import h5py

    tensors: list[TensorInfo] = []
    with h5py.File(p, "r") as f:
        root = f["model_weights"] if "layer_names" not in f.attrs else f
        for raw_layer in root.attrs["layer_names"]:
            layer = raw_layer.decode() if isinstance(raw_layer, bytes) else str(raw_layer)
            group = root[layer]
            for i, raw in enumerate(group.attrs.get("weight_names", [])):
                wname = raw.decode() if isinstance(raw, bytes) else str(raw)
                ds = group[wname]
                short = wname.rsplit("/", 1)[-1].split(":", 1)[0]
                name = f"{layer}/{short}"
                if names_only:
                    tensors.append(_info(name, ds.shape, ds.dtype, layer=layer, index=i))
                else:
                    tensors.append(_info(name, np.asarray(ds[()]), layer=layer, index=i))
    return WeightFile(str(p), "keras_h5_legacy", "keras", tensors, [])


# --- .npz and .safetensors -----------------------------------------------------------------


def _layout_from_names(names) -> str:
    """PyTorch vocabulary (`weight`, `running_mean`) means PyTorch layout; else Keras layout."""
    torch_words = ("weight", "running_mean", "running_var", "num_batches_tracked")
    for n in names:
        if re.split(r"[./]", n)[-1] in torch_words:
            return "torch"
    return "keras"


def _read_onnx(p: Path, names_only: bool) -> WeightFile:
    from reuse.formats.onnx_file import read_onnx

    found, notes = read_onnx(p, names_only)
    tensors = [TensorInfo(**t) for t in found]
    layout = _layout_from_names(t.name for t in tensors if t.kind == "weight")
    return WeightFile(str(p), "onnx", layout, tensors, notes)


def _unreadable_npz(p: Path, err: BaseException) -> ModelLoadError:
    """The one-line error for a .npz of weights that cannot be read: a text file (NumPy calls
    anything without a zip or NumPy signature pickled data), a real pickle, a damaged zip."""
    start = numpy_signature_missing(p)
    if start is not None:
        what = NOT_NUMPY[0].format(start=start), "write the weights with np.savez(path, **arrays)"
    else:
        what = explain(err) or (str(err).strip()[:150], "check that the file is complete")
    return ModelLoadError(f"cannot read {p} as .npz: {what[0]}", what[1])


def _read_npz(p: Path, names_only: bool) -> WeightFile:
    try:
        with np.load(p, allow_pickle=False) as archive:
            tensors = []
            for key in archive.files:
                try:
                    tensors.append(_info(key, archive[key]))
                except ValueError as err:
                    if "allow_pickle" in str(err):
                        raise ModelLoadError(
                            f"{p}: array '{key}' holds Python objects, which need unpickling (code could run); reuse never unpickles",
                            "save plain numeric arrays with np.savez",
                        ) from None
                    raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _unreadable_npz(p, err) from None
    return WeightFile(str(p), "npz", _layout_from_names(t.name for t in tensors), tensors, [])


def _read_safetensors(p: Path, names_only: bool) -> WeightFile:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ModelLoadError(
            f"reading {p} needs the safetensors package",
            "install it with: pip install 'keras-reuse[safetensors]'",
        ) from None
    tensors = []
    try:
        with safe_open(str(p), framework="numpy") as f:
            for key in f.keys():
                if names_only:
                    sl = f.get_slice(key)
                    tensors.append(_info(key, sl.get_shape(), sl.get_dtype().lower()))
                else:
                    tensors.append(_info(key, _safetensor_value(p, f, key)))
    except ModelLoadError:
        raise
    except Exception as err:  # safetensors raises its own SafetensorError for damaged files
        raise ModelLoadError(
            f"cannot read {p} as safetensors ({str(err).splitlines()[0][:150]})",
            "check that the file is complete",
        ) from None
    return WeightFile(
        str(p), "safetensors", _layout_from_names(t.name for t in tensors), tensors, []
    )


def _safetensor_value(p: Path, f, key: str) -> np.ndarray:
    try:
        return f.get_tensor(key)
    except TypeError:
        # bfloat16 has no NumPy dtype: read through torch and widen to float32.
        try:
            import torch  # noqa: F401
            from safetensors import safe_open
        except ImportError:
            raise ModelLoadError(
                f"{p}: tensor '{key}' is bfloat16, which NumPy cannot hold",
                f"install torch to read it: {TORCH_INSTALL}",
            ) from None
        with safe_open(str(p), framework="pt") as tf_:
            return tf_.get_tensor(key).float().numpy()


# --- PyTorch -------------------------------------------------------------------------------

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module", "ema")


def _read_torch(p: Path, names_only: bool) -> WeightFile:
    try:
        import torch
    except ImportError:
        raise ModelLoadError(
            f"reading the PyTorch file {p} needs torch", f"install it with: {TORCH_INSTALL}"
        ) from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if (
            not found
            and "Unsupported global" not in str(err)
            and "Unsupported class" not in str(err)
        ):
            # Not a code reference, just bytes that are no pickle (damaged or another format).
            raise ModelLoadError(
                f"cannot read {p} as a PyTorch file (not a valid torch.save() output)",
                "check that the file is complete; safetensors and state dicts are supported",
            ) from None
        detail = f": {found.group(1)}" if found else ""
        raise ModelLoadError(
            f"{p} contains code (pickled Python objects{detail}); reuse never unpickles code",
            "save only the weights: torch.save(model.state_dict(), 'weights.pt'), or use safetensors",
        ) from None
    except Exception as err:  # damaged zip, not a torch file, ...
        raise ModelLoadError(
            f"cannot read {p} as a PyTorch file ({str(err).strip().splitlines()[0][:150] if str(err).strip() else type(err).__name__})",
            "check that the file is a complete torch.save() output",
        ) from None
    notes: list[str] = []
    state, others = _pick_state_dict(obj)
    if others:
        notes.append(f"checkpoint entries other than the weights: {', '.join(others)}")
    tensors = []
    for name, value in _flatten(state):
        if isinstance(value, torch.Tensor):
            tensors.append(_info(name, _torch_to_numpy(value)))
    for key in others:
        value = obj[key]
        if isinstance(value, dict):
            for name, v in _flatten(value, prefix=key + "."):
                if isinstance(v, torch.Tensor):
                    t = _info(name, _torch_to_numpy(v))
                    t.kind = "optimizer" if "optim" in key else "bookkeeping"
                    tensors.append(t)
    if not tensors:
        raise ModelLoadError(
            f"{p} holds no tensors", "pass a file written by torch.save(model.state_dict(), path)"
        )
    return WeightFile(str(p), "torch", "torch", tensors, notes)


def _torch_to_numpy(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _pick_state_dict(obj) -> tuple[dict, list[str]]:
    """The model weights of a torch.load result, and the other top-level keys of a checkpoint."""
    if not isinstance(obj, dict):
        return {"": obj}, []
    for key in _STATE_DICT_KEYS:
        if isinstance(obj.get(key), dict):
            return obj[key], [k for k in obj if k != key]
    return obj, []


def _flatten(obj, prefix: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], obj


# --- TensorFlow checkpoints ----------------------------------------------------------------

_ATTR_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def tf_tensor_kind(name: str) -> str:
    """ "optimizer", "bookkeeping" or "weight" for a TensorFlow checkpoint key."""
    if ".OPTIMIZER_SLOT" in name or name.startswith("optimizer/") or _TF1_SLOTS.search(name):
        return "optimizer"
    if name.split("/")[-1] in _TF_BOOKKEEPING or name.startswith("save_counter"):
        return "bookkeeping"
    return "weight"


def _read_tf_checkpoint(p: Path, names_only: bool) -> WeightFile:
    prefix = checkpoint_prefix(p)
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as err:
        raise ModelLoadError(
            f"cannot read the TensorFlow checkpoint {prefix} ({str(err).strip().splitlines()[0][:150]})",
            "check that its .index and .data-* files are complete",
        ) from None
    object_based = "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes
    tensors = []
    for key in sorted(shapes):
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        name = key[: -len(_ATTR_SUFFIX)] if key.endswith(_ATTR_SUFFIX) else key
        kind = tf_tensor_kind(name)
        dtype = dtypes[key].name
        if names_only or dtype == "string":
            t = _info(name, shapes[key], dtype, kind=kind)
        else:
            t = _info(name, np.asarray(reader.get_tensor(key)), kind=kind)
        tensors.append(t)
    note = "TF2 object-based" if object_based else "TF1 name-based"
    return WeightFile(
        str(p), "tf_checkpoint", "keras", tensors, [f"{note} checkpoint {prefix.name}"]
    )
