"""Models with several outputs: their output names, keeping one, refusing several.

`reuse` reuses one output at a time (a cache holds one tap, a head sits on one tensor). A
SavedModel signature that returns a dict (basic-pitch's `contour`, `note`, `onset`) and a
functional Keras model with several output layers (MTCNN's O-Net) load whole; `--output-key
NAME` keeps one:

    names = output_names(model)               # ["contour", "note", "onset"]
    model = select_output(model, "note")      # same inputs, one output
    require_single_output(model)              # a UsageError naming the outputs otherwise
"""

from __future__ import annotations

from reuse.core.errors import ModelLoadError, UsageError


def output_names(model) -> list[str]:
    """The names of a model's outputs: its output layers' names, in output order."""
    names = []
    for i, t in enumerate(model.outputs):
        history = getattr(t, "_keras_history", None)
        op = getattr(history, "operation", None) if history is not None else None
        names.append(getattr(op, "name", None) or f"output_{i}")
    return names


def select_output(model, output_key: str):
    """A model with the same inputs and only the output named `output_key`.

    A SavedModel block already picked its output when it was built; a Keras model keeps the
    output whose layer is named `output_key`.

    Raises:
        ModelLoadError: no output has that name (the message lists them).
    """
    import keras

    names = output_names(model)
    if len(names) == 1 and block_output_key(model) == output_key:
        return model
    if output_key not in names:
        raise ModelLoadError(
            f"the model has no output '{output_key}' (outputs: {', '.join(names)})",
            f"choose one with --output-key {names[0]}",
        )
    if len(names) == 1:
        return model
    return keras.Model(model.inputs, model.outputs[names.index(output_key)], name=model.name)


def block_output_key(model) -> str | None:
    """The output key of the model's SavedModel block (`--output-key` it was loaded with), or None."""
    from reuse.formats.savedmodel_block import SavedModelBlock

    return next(
        (layer.output_key for layer in model.layers if isinstance(layer, SavedModelBlock)), None
    )


def require_single_output(model) -> None:
    """Refuse a model with several outputs: reuse trains on one.

    Raises:
        UsageError: the model has several outputs; the message names them and the hint shows
            `--output-key`.
    """
    names = output_names(model)
    if len(names) > 1:
        shapes = ", ".join(
            f"{n} {tuple(t.shape)}" for n, t in zip(names, model.outputs, strict=True)
        )
        raise UsageError(
            f"the model has {len(names)} outputs ({shapes}); reuse reuses one output at a time",
            f"choose one with --output-key NAME, e.g. --output-key {names[0]}",
        )
