"""Load and save models: the one place that knows every model format `reuse` reads.

Formats, chosen by what the path is (`reuse.formats.paths.classify`, not only its extension):

- `.keras` zip archives (Keras 3);
- `.h5` / `.hdf5` full models, written by Keras 3 or by tf.keras 2;
- `.weights.h5` weights, with the architecture given separately (`arch=`: a `.keras`/`.h5`
  model or a `.json` config);
- SavedModel folders: a Keras 3 `model.export()` folder (or any TF2 SavedModel with a
  `serve` / `serving_default` signature) becomes one frozen block
  (`reuse.formats.savedmodel_block.SavedModelBlock`, a `TFSMLayer` that reloads from any
  directory); a legacy tf.keras SavedModel gets its layers back through the optional
  `tf_keras` package.

Models with several outputs (a SavedModel signature returning a dict, a functional Keras
model) load whole; `output_key` (`--output-key NAME`) keeps one output, and the training
commands ask for one with `require_single_output`.

Keras safe mode stays on: a Lambda layer that holds Python code is refused unless `unsafe`,
and so is a SavedModel whose graph reads or writes files, prints, calls Python or talks to
the network (`reuse.formats.graph_scan`).
TensorFlow is imported inside the functions, never at module import.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

from reuse.core.errors import ModelLoadError, UnsafeModelError
from reuse.formats.paths import HDF5_KINDS, PathKind, classify, open_hdf5

# Modules that register custom Keras objects (schedules, constraints) saved inside models.
_REGISTERING_MODULES = ("reuse.surgery.keras_objects", "reuse.formats.savedmodel_block")

TF_KERAS_INSTALL = "pip install --no-deps 'tf_keras~=2.21.0'"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def model_kind(path: str | os.PathLike) -> str:
    """Classify a path for loading: 'keras', 'h5', 'weights_h5', 'savedmodel', 'keras_export'.

    Asks `reuse.formats.paths.classify`; any HDF5 file that is not weights only is 'h5'
    (`load_model` then says what it holds instead of a model).

    Raises:
        ModelLoadError: a missing path, a folder that is not a SavedModel, a `.keras` file that
            is not a zip archive, or a format reuse cannot load as a model.
    """
    p = Path(path)
    kind = classify(p)
    if kind is PathKind.MISSING or not p.exists():
        raise ModelLoadError(f"{p}: no such file or folder", "check the path")
    if kind in (PathKind.SAVEDMODEL, PathKind.KERAS_EXPORT):
        return kind.value
    if p.is_dir():
        raise ModelLoadError(
            f"{p} is a folder but not a SavedModel (no saved_model.pb inside)",
            "pass a .keras or .h5 file, or a SavedModel folder",
        )
    if kind is PathKind.WEIGHTS_H5:
        return "weights_h5"
    if kind is PathKind.KERAS:
        if not zipfile.is_zipfile(p):
            raise ModelLoadError(
                f"{p} is not a valid .keras file (not a zip archive: truncated or another format)",
                "re-save the model with model.save('model.keras')",
            )
        return "keras"
    if kind in HDF5_KINDS:
        return "h5"
    raise ModelLoadError(
        f"{p}: unsupported model format '{p.suffix or p.name}'",
        "give a .keras or .h5 model, a .weights.h5 file with --arch, or a SavedModel folder",
    )


def _register_custom_objects() -> None:
    for module in _REGISTERING_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _check_keras_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelLoadError(
            f"{path} is not a valid .keras file ({err})", "re-save the model with model.save()"
        ) from None
    if bad is not None:
        raise ModelLoadError(
            f"{path} is damaged ({bad} fails its CRC check)", "copy or save it again"
        )
    if "config.json" not in names:
        raise ModelLoadError(
            f"{path} is a zip archive but not a Keras model (no config.json inside)",
            "pass a file written by model.save('model.keras')",
        )


def _check_h5_model(path: Path) -> None:
    with open_hdf5(path) as f:
        has_config = "model_config" in f.attrs
        keys = list(f.keys())
    if not has_config:  # weights-only files are classified 'weights_h5' before this
        raise ModelLoadError(
            f"{path} is an HDF5 file that holds no Keras model (top-level keys: {', '.join(keys[:8]) or 'none'})",
            "pass a model saved with model.save(), or a feature cache to `reuse inspect`",
        )


def fix_tf_keras2_config(config: dict) -> dict:
    """Adjust a tf.keras 2 model config where Keras 3 misreads it; returns a fixed copy.

    Differences that break Keras 3 loads of ordinary tf.keras 2 files:
    - BatchNormalization saved `axis` as a one-element list (every tf.keras application);
      Keras 3 wants an int. DepthwiseConv2D saved `groups=1`, which Keras 3 refuses.
    - In tf.keras 2 a nested Sequential counts its calls from 1 (node 0 is its own graph);
      Keras 3 counts a Sequential's calls from 0, so references to it are off by one.

    Example:
        >>> fix_tf_keras2_config(json.loads(h5file.attrs["model_config"]))
    """
    config = json.loads(json.dumps(config))

    def fix_refs(node_list, sequential: set[str]):
        for node in node_list:
            if isinstance(node, list):
                for ref in node:
                    if isinstance(ref, list) and ref and ref[0] in sequential and int(ref[1]) > 0:
                        ref[1] = int(ref[1]) - 1

    def visit(spec):
        if not isinstance(spec, dict):
            return
        cls, cfg = spec.get("class_name"), spec.get("config")
        if not isinstance(cfg, dict):
            return
        if (
            cls == "BatchNormalization"
            and isinstance(cfg.get("axis"), list)
            and len(cfg["axis"]) == 1
        ):
            cfg["axis"] = int(cfg["axis"][0])
        if cls in ("DepthwiseConv1D", "DepthwiseConv2D") and cfg.get("groups") == 1:
            del cfg["groups"]
        layers = cfg.get("layers")
        if isinstance(layers, list):
            for layer in layers:
                visit(layer)
            if cls in ("Functional", "Model"):
                sequential = {
                    layer.get("name") for layer in layers if layer.get("class_name") == "Sequential"
                }
                if sequential:
                    for layer in layers:
                        fix_refs(layer.get("inbound_nodes", []), sequential)
                    for key in ("output_layers",):
                        refs = cfg.get(key)
                        if refs and isinstance(refs[0], str):
                            refs = [refs]
                        fix_refs([refs or []], sequential)

    visit(config)
    return config


def _load_h5(path: Path, unsafe: bool):
    """A full-model .h5 file; tf.keras 2 files get their config fixed for Keras 3 first."""
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        raw = f.attrs["model_config"]
    if not version.startswith("2."):
        return _keras_load(path, unsafe)
    config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    fixed = fix_tf_keras2_config(config)
    if fixed == config:
        return _keras_load(path, unsafe)
    # The input is never modified: the fixed config goes into a temporary copy.
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model.h5"
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as f:
            f.attrs["model_config"] = json.dumps(fixed)
        return _keras_load(copy, unsafe)


def _keras_load(path: Path, unsafe: bool):
    """keras.models.load_model, uncompiled, with reuse's SavedModel block for TFSMLayer."""
    import keras

    from reuse.formats.savedmodel_block import CUSTOM_OBJECTS

    return keras.models.load_model(
        path, compile=False, safe_mode=not unsafe, custom_objects=CUSTOM_OBJECTS
    )


_MISSING_CLASS = re.compile(
    r"Could not locate class '([^']+)'|Unknown (?:layer|class)[^']*'([^']+)'"
)


def _missing_classes(err: BaseException) -> list[str]:
    """The class names Keras could not find, from `err` and the errors chained to it, in the
    order met ("QuantumDense", not the outer Sequential that failed to deserialize), each with
    its registered name when the config gives one ("QuantumDense (quantum>QuantumDense)")."""
    texts, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        texts.append(str(err))
        err = err.__cause__ or err.__context__
    text = "\n".join(texts)
    names: list[str] = []
    for match in _MISSING_CLASS.finditer(text):
        name = match.group(1) or match.group(2)
        if name not in names:
            names.append(name)
    described = []
    for name in names:
        registered = re.search(rf"'registered_name': '([^']*>{re.escape(name)})'", text)
        described.append(f"{name} (registered as {registered.group(1)})" if registered else name)
    return described


def _lambda_refusal(path: Path) -> UnsafeModelError:
    return UnsafeModelError(
        f"{path} contains a Lambda layer with Python code, which could run arbitrary code",
        "pass --unsafe only if you trust where the file came from",
    )


# tf_keras layers that call a TensorFlow Python function named in their config while
# tf_keras rebuilds the model; Keras 3 has none of them, so such a model cannot load anyway.
_LEGACY_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda", "ClassMethod", "InstanceMethod")


def _config_classes(value) -> set[str]:
    """Every `class_name` in a JSON config, nested configs included."""
    if isinstance(value, dict):
        found = {value["class_name"]} if isinstance(value.get("class_name"), str) else set()
        return found.union(*map(_config_classes, value.values()))
    if isinstance(value, list):
        return set().union(*map(_config_classes, value))
    return set()


def _legacy_classes(path: Path) -> set[str]:
    """The classes a tf.keras SavedModel's `keras_metadata.pb` configures, nested ones (a
    model's layers) included. tf_keras rebuilds layers from these configs in Python: a
    Lambda's config may hold marshalled bytecode, an op layer's the TF function it calls."""
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString((path / "keras_metadata.pb").read_bytes())
        return set().union(*(_config_classes(json.loads(n.metadata)) for n in metadata.nodes))
    except Exception:  # unreadable: tf_keras will say so, in safe mode  # noqa: BLE001
        return set()


def _translate_keras_error(path: Path, err: Exception) -> ModelLoadError:
    text = str(err)
    if isinstance(err, ModelLoadError):
        return err
    if "TFSMLayer" in text and "safe_mode" in text:
        return UnsafeModelError(
            f"{path} holds a plain Keras TFSMLayer (a SavedModel block saved by Keras or by an "
            "older reuse), which Keras refuses in safe mode; it holds no Python code",
            "pass --unsafe if you trust the SavedModel it points to, or tune again with this "
            "version of reuse (its SavedModel blocks load without --unsafe)",
        )
    if "safe_mode" in text or "arbitrary code execution" in text:
        return _lambda_refusal(path)
    if "Could not locate" in text or "Unknown layer" in text or "Unknown class" in text:
        names = _missing_classes(err)
        what = ", ".join(names) if names else text.strip().splitlines()[0][:200]
        return ModelLoadError(
            f"{path} uses a layer class that is not available here: {what}",
            "import the package that defines it, or re-save the model with standard layers",
        )
    first = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
    return ModelLoadError(
        f"cannot load {path}: {first}", "check that the file is a complete Keras model"
    )


def load_model(
    path: str | os.PathLike,
    *,
    unsafe: bool = False,
    arch: str | os.PathLike | None = None,
    output_key: str | None = None,
):
    """Load a Keras 3 model from any supported format.

    Example:
        >>> model = load_model("models/digits_0to4.keras")

    Args:
        path: a `.keras`/`.h5` file, a `.weights.h5` file (with `arch`), or a SavedModel folder.
        unsafe: allow Lambda layers that hold Python code (Keras `safe_mode=False`), and
            SavedModels whose graph reaches outside the model (`reuse.formats.graph_scan`:
            file, console, Python, network or debugger operations).
        arch: the architecture for a `.weights.h5` file: a `.keras`/`.h5` model or `.json` config.
        output_key: keep only this output of a model with several (a SavedModel signature's
            output name, or a Keras output layer's name); None keeps them all.

    Returns:
        A `keras.Model`, uncompiled; `model._reuse_path` is `path`, for error hints that name
        the command to run on it.

    Raises:
        ModelLoadError: the path is missing, damaged, or of a format that cannot be loaded;
            a SavedModel with several inputs (the message names them); an unknown `output_key`.
        UnsafeModelError: the model holds a Lambda layer, or is (or holds) a SavedModel whose
            graph reaches outside the model, and `unsafe` is False.
    """
    from reuse.formats.outputs import select_output

    model = _load_any(Path(path), unsafe=unsafe, arch=arch, output_key=output_key)
    model = select_output(model, output_key) if output_key is not None else model
    try:
        model._reuse_path = str(path)  # what error hints call the model (a cache rebuild)
    except (AttributeError, TypeError):
        pass
    return model


def _load_any(p: Path, *, unsafe: bool, arch, output_key: str | None):
    kind = model_kind(p)
    if kind == "keras":
        _check_keras_zip(p)
    elif kind == "h5":
        _check_h5_model(p)
    elif kind == "weights_h5":
        if arch is None:
            raise ModelLoadError(
                f"{p} holds weights only, without the architecture",
                # Only inspect takes --arch: the other commands need a whole model.
                f"make a model of it first: reuse import-weights {p} --into ARCH.keras "
                "-o MODEL.keras (ARCH: a .keras model or .json config of the same layers; "
                "reuse inspect also takes --arch ARCH)",
            )
        return _load_weights_into(p, arch, unsafe=unsafe)
    elif kind == "savedmodel":
        return _load_legacy_savedmodel(p, unsafe=unsafe)
    elif kind == "keras_export":
        return _load_export(p, output_key, unsafe=unsafe)

    from reuse.formats.savedmodel_block import loading_from, trusting

    _register_custom_objects()
    try:
        with loading_from(p), trusting(unsafe):
            return _load_h5(p, unsafe) if kind == "h5" else _keras_load(p, unsafe)
    except ModelLoadError:
        raise
    except Exception as err:  # Keras raises many types; each becomes one line
        raise _translate_keras_error(p, err) from err


def _load_weights_into(weights: Path, arch: str | os.PathLike, *, unsafe: bool):
    import keras

    arch_path = Path(arch)
    if arch_path.suffix.lower() == ".json":
        _register_custom_objects()
        try:
            config = json.loads(arch_path.read_text())
            model = keras.models.model_from_json(json.dumps(config))
        except FileNotFoundError:
            raise ModelLoadError(f"{arch_path}: no such file", "check the --arch path") from None
        except Exception as err:
            raise _translate_keras_error(arch_path, err) from err
    else:
        model = load_model(arch_path, unsafe=unsafe)
    try:
        model.load_weights(weights)
    except Exception as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ModelLoadError(
            f"the weights in {weights} do not fit the architecture {arch_path} ({first})",
            "pass the architecture these weights were saved from",
        ) from err
    return model


def _load_export(path: Path, output_key: str | None = None, *, unsafe: bool = False):
    """A SavedModel folder (Keras `model.export()` or any TF2 SavedModel) as a model with one
    frozen SavedModelBlock; several outputs stay a list unless `output_key` picks one. Its
    graph is scanned first (`reuse.formats.graph_scan`): refused unless `unsafe` when it
    reaches outside the model."""
    import keras
    import tensorflow as tf

    from reuse.formats.graph_scan import check_savedmodel
    from reuse.formats.savedmodel_block import SavedModelBlock

    check_savedmodel(path, unsafe=unsafe)

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:
        raise ModelLoadError(
            f"cannot read SavedModel {path}: {str(err).splitlines()[0][:200]}",
            "check that the folder is complete",
        ) from err
    endpoints = list(loaded.signatures.keys())
    endpoint = (
        "serve"
        if "serve" in endpoints
        else ("serving_default" if "serving_default" in endpoints else None)
    )
    if endpoint is None:
        raise ModelLoadError(
            f"SavedModel {path} has no 'serve' or 'serving_default' signature (has: {', '.join(endpoints) or 'none'})",
            "export the model with model.export(path)",
        )
    sig = loaded.signatures[endpoint]
    specs = sig.structured_input_signature[1]
    if len(specs) != 1:
        named = ", ".join(f"{k}: {v.dtype.name} {tuple(v.shape)}" for k, v in sorted(specs.items()))
        raise ModelLoadError(
            f"SavedModel {path} takes {len(specs)} inputs ({named}); reuse handles single-input models",
            "export a signature with one input (e.g. a tf.function that builds the others inside)",
        )
    spec = next(iter(specs.values()))
    outputs = sig.structured_outputs
    keys = sorted(outputs) if isinstance(outputs, dict) else []
    key = output_key if len(keys) > 1 or output_key is not None else None
    layer = SavedModelBlock(
        str(path.resolve()),
        call_endpoint=endpoint,
        output_key=key,
        trainable=False,
        name="savedmodel",
    )
    inputs = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype.name, name="input")
    if key is None and len(keys) > 1:
        # Every output, in name order, each through an identity layer that carries its name.
        outs = layer(inputs)
        named = [keras.layers.Identity(name=k)(outs[k]) for k in keys]
        return keras.Model(inputs, named, name=path.name)
    return keras.Model(inputs, layer(inputs), name=path.name)


def _load_legacy_savedmodel(path: Path, *, unsafe: bool = False):
    """A tf.keras 2 SavedModel: read it with tf_keras, hand it to Keras 3 through an .h5 file.
    Its graph is scanned first, as in `_load_export`; a Lambda layer in its Keras metadata is
    refused unless `unsafe` (tf_keras would run its Python code while rebuilding it)."""
    from reuse.formats.graph_scan import check_savedmodel

    check_savedmodel(path, unsafe=unsafe)
    try:
        import tf_keras
    except ImportError:
        raise ModelLoadError(
            f"{path} is a legacy tf.keras SavedModel, which needs the optional tf_keras package",
            f"install it with: {TF_KERAS_INSTALL}",
        ) from None

    from tf_keras.src.saving.serialization_lib import SafeModeScope

    classes = _legacy_classes(path)
    if not unsafe and "Lambda" in classes:
        raise _lambda_refusal(path)
    op_layers = sorted(classes.intersection(_LEGACY_OP_LAYERS))
    if op_layers:  # before tf_keras calls their functions; Keras 3 would refuse them next
        raise ModelLoadError(
            f"{path} uses a layer class that is not available here: {', '.join(op_layers)}",
            "import the package that defines it, or re-save the model with standard layers",
        )
    try:
        # tf_keras' SavedModel loader rebuilds layers from keras_metadata.pb without safe mode
        # unless told: a Lambda's marshalled bytecode would run while the model is rebuilt.
        with SafeModeScope(not unsafe):
            legacy = tf_keras.models.load_model(str(path), compile=False)
    except Exception as err:
        if "safe_mode" in str(err):
            raise _lambda_refusal(path) from err
        raise ModelLoadError(
            f"tf_keras cannot read {path}: {str(err).splitlines()[0][:200]}",
            "check that the folder is complete",
        ) from err
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "legacy.h5"
        legacy.save(h5, save_format="h5")
        try:
            return _load_h5(h5, unsafe=False)
        except Exception as err:
            raise _translate_keras_error(path, err) from err


def check_model_output(
    path: str | os.PathLike, hint: str = "use a .keras (or .h5) output path"
) -> None:
    """Refuse an output path that `save_model` cannot write, before any work is done.

    Raises:
        OutputError: the name ends neither in .keras nor in .h5 (.weights.h5 included).
    """
    from reuse.core.errors import OutputError

    if not Path(path).name.lower().endswith((".keras", ".h5")):
        raise OutputError(f"cannot save a model as '{Path(path).name}'", hint)


def save_model(model, path: str | os.PathLike) -> Path:
    """Save `model` atomically (temporary file, then rename). The format follows the extension.

    Raises:
        OutputError: the extension is not .keras or .h5.
    """
    from reuse.core.atomic import atomic_path

    target = Path(path)
    suffix = target.suffix.lower()
    if target.name.lower().endswith(".weights.h5"):
        with atomic_path(target, suffix=".weights.h5") as tmp:
            model.save_weights(tmp)
        return target
    check_model_output(target)
    from reuse.formats.savedmodel_block import saving_to

    with atomic_path(target, suffix=suffix) as tmp, saving_to(target):
        model.save(tmp)
    return target
