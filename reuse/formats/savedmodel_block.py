"""A SavedModel as one frozen Keras layer that reloads from anywhere: `SavedModelBlock`.

Keras' own `TFSMLayer` wraps a SavedModel signature as a layer, but a model that holds one
does not travel: its config stores the path exactly as given (a relative path breaks in any
other working directory), and Keras refuses to deserialize it in safe mode. `SavedModelBlock`
is a `TFSMLayer` that

- picks one output of a multi-output signature (`output_key`), so the layer has one output
  that `reuse` can cut at, cache and put a head on;
- stores the SavedModel's path twice: absolute, and relative to the folder of the model file
  being saved (when `reuse.formats.model_io.save_model` writes it). On load the relative path
  is tried first, against the folder of the model file being loaded, then the absolute one,
  then the relative one against the working directory. So a tuned model and its SavedModel
  can move together (keep them side by side, as saved), or the model alone (the absolute path);
- loads without `--unsafe` when its graph stays inside the model: a SavedModel holds a
  TensorFlow graph and variables, no Python code. (Keras refuses TFSMLayer in safe mode
  because the graph comes from another file.) Before the block reloads its SavedModel,
  `reuse.formats.graph_scan` scans the graph, as for a SavedModel folder loaded directly: one
  that reads or writes files, prints, calls Python or talks to the network needs `--unsafe`.

Outside `reuse`, load such a model with `reuse.load_model(path)`, or with
`keras.models.load_model(path, custom_objects=reuse.formats.savedmodel_block.CUSTOM_OBJECTS)`
after `import reuse.formats.savedmodel_block` (the relative path then resolves against the
working directory, after the absolute path).

Models saved with a plain `TFSMLayer` (by Keras, or by older versions of reuse) still need
`--unsafe`: Keras resolves its built-in class before any custom object.

This module imports Keras and TensorFlow at the top; `reuse.formats.model_io` imports it only
inside its functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path

import keras

from reuse.core.errors import ModelLoadError

# The folder of the model file being saved / loaded, while `save_model` / `load_model` run.
_SAVE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("_SAVE_DIR", default=None)
_LOAD_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("_LOAD_DIR", default=None)
# Whether the user trusts the model file being loaded (`--unsafe`); None: Keras' safe mode decides.
_TRUSTED: contextvars.ContextVar[bool | None] = contextvars.ContextVar("_TRUSTED", default=None)


@contextlib.contextmanager
def _folder_of(var: contextvars.ContextVar, path: str | os.PathLike):
    token = var.set(Path(path).resolve().parent)
    try:
        yield
    finally:
        var.reset(token)


def saving_to(target: str | os.PathLike):
    """While a model is saved to `target`, SavedModel paths are stored relative to its folder."""
    return _folder_of(_SAVE_DIR, target)


def loading_from(path: str | os.PathLike):
    """While a model file is loaded from `path`, relative SavedModel paths resolve against its folder."""
    return _folder_of(_LOAD_DIR, path)


@contextlib.contextmanager
def trusting(unsafe: bool):
    """While a model file is loaded, whether its SavedModel blocks may reload a SavedModel
    whose graph reaches outside the model (`unsafe`, from `--unsafe`)."""
    token = _TRUSTED.set(bool(unsafe))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _trusted() -> bool:
    trusted = _TRUSTED.get()
    if trusted is not None:
        return trusted
    try:  # outside reuse's loader: keras.config.enable_unsafe_deserialization() trusts
        from keras.src.saving.serialization_lib import in_safe_mode
    except ImportError:  # pragma: no cover - a Keras without it: stay safe
        return False
    return in_safe_mode() is False


def _is_savedmodel(path: Path) -> bool:
    return (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists()


def resolve_savedmodel(filepath: str, relative: str | None) -> str:
    """Where a stored SavedModel is now: relative to the loaded model's folder, absolute, or
    relative to the working directory, in that order.

    Raises:
        ModelLoadError: none of those holds a SavedModel; the message lists where it looked.
    """
    candidates = []
    base = _LOAD_DIR.get()
    if relative is not None and base is not None:
        candidates.append(base / relative)
    candidates.append(Path(filepath))
    if relative is not None:
        candidates.append(Path(relative))
    for candidate in candidates:
        if _is_savedmodel(candidate):
            return str(candidate.resolve())
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise ModelLoadError(
        f"the model's SavedModel block cannot be found (looked in: {looked})",
        "keep the SavedModel folder where it was when the model was saved, at the same path "
        "relative to the model file",
    )


@keras.saving.register_keras_serializable(package="reuse")
class SavedModelBlock(keras.layers.TFSMLayer):
    """One signature of a SavedModel as a frozen layer; one output of it when `output_key` is set.

        block = SavedModelBlock("basic_pitch/nmp", call_endpoint="serving_default",
                                output_key="note", trainable=False)
        block(keras.Input((43844, 1)))  # (None, 172, 88)

    Args:
        filepath: the SavedModel folder.
        call_endpoint: the signature or function to call ("serve", "serving_default").
        call_training_endpoint: an endpoint to call in training, or None.
        output_key: the output to return when the endpoint returns a dict of several; None
            returns what the endpoint returns (one output is unwrapped from its dict).
        relative_filepath: the path relative to the saved model file's folder (set by
            `get_config` when `reuse.formats.model_io.save_model` saves; read on load).
        trainable, name, dtype: as for any Keras layer.

    Raises:
        ModelLoadError: the SavedModel cannot be found, or `output_key` is not one of its outputs.
    """

    def __init__(
        self,
        filepath,
        call_endpoint="serve",
        call_training_endpoint=None,
        output_key=None,
        relative_filepath=None,
        trainable=True,
        name=None,
        dtype=None,
        **kwargs,
    ):
        path = resolve_savedmodel(str(filepath), relative_filepath)
        super().__init__(
            path,
            call_endpoint=call_endpoint,
            call_training_endpoint=call_training_endpoint,
            trainable=trainable,
            name=name,
            dtype=dtype,
            **kwargs,
        )
        self.output_key = output_key
        keys = self.output_keys()
        if output_key is not None and output_key not in keys:
            raise ModelLoadError(
                f"SavedModel {path} has no output '{output_key}' (outputs: {', '.join(keys) or 'one, unnamed'})",
                f"choose one with --output-key {keys[0]}" if keys else "leave --output-key out",
            )

    def output_keys(self) -> list[str]:
        """The names of the endpoint's outputs when it returns a dict ([] otherwise)."""
        signature = self._reloaded_obj.signatures.get(self.call_endpoint)
        fn = signature if signature is not None else self.call_endpoint_fn
        outputs = getattr(fn, "structured_outputs", None)
        if outputs is None and hasattr(fn, "concrete_functions") and fn.concrete_functions:
            outputs = fn.concrete_functions[0].structured_outputs
        return sorted(outputs) if isinstance(outputs, dict) else []

    def call(self, inputs, training=False, **kwargs):
        outputs = super().call(inputs, training=training, **kwargs)
        if isinstance(outputs, dict):
            if self.output_key is not None:
                return outputs[self.output_key]
            if len(outputs) == 1:
                return next(iter(outputs.values()))
        return outputs

    def get_config(self):
        config = super().get_config()
        absolute = Path(self.filepath).resolve()
        config["filepath"] = str(absolute)
        base = _SAVE_DIR.get()
        config["relative_filepath"] = os.path.relpath(absolute, base) if base is not None else None
        config["output_key"] = self.output_key
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        """Reload the block from a saved model's config, after scanning its SavedModel.

        Raises:
            UnsafeModelError: the SavedModel's graph reaches outside the model and the load
                is not trusted (`--unsafe`, `trusting(True)`, or Keras' unsafe deserialization).
            ModelLoadError: the SavedModel cannot be found (`resolve_savedmodel`).
        """
        from reuse.formats.graph_scan import check_savedmodel

        config = dict(config)
        path = resolve_savedmodel(str(config["filepath"]), config.get("relative_filepath"))
        check_savedmodel(path, unsafe=_trusted() or bool(safe_mode is False))
        return cls(**config)


# Pass to keras.models.load_model (the class is also registered when this module is imported).
CUSTOM_OBJECTS = {"reuse>SavedModelBlock": SavedModelBlock}
