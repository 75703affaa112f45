"""The new head: the layers a `--head` spec builds, `--head auto`, and the losses.

    specs = parse_layer_spec("dense:100:elu,dropout:0.3,dense:5:softmax")   # layer_spec
    layers = build_layers(specs, l2=1e-4, seed=0)      # head_dense_1, head_dropout_1, ...
    specs, loss, metrics = auto_head(y)                # sized and chosen from the labels

The grammar (`parse_layer_spec`, `LayerSpec`, `GRAMMAR_HELP`) is `reuse.surgery.layer_spec`,
shared with `import-weights --arch`.

Initialization follows the activation (Glorot & Bengio, He et al., Klambauer et al.): He
normal for the ReLU family (relu, leaky_relu, elu, gelu, swish), LeCun normal for selu,
Glorot uniform otherwise. A linear `dense` followed by `activation:NAME` (the
batch-norm-before-activation pattern) is initialized for NAME. Keras is imported inside the
functions.
"""

from __future__ import annotations

import numpy as np

from reuse.core import spec_grammar as _spec
from reuse.core.errors import DataError, SpecError, UsageError
from reuse.surgery.layer_spec import LayerSpec, layer_names, make_layer

HE_ACTIVATIONS = {"relu", "leaky_relu", "elu", "gelu", "swish"}
LECUN_ACTIVATIONS = {"selu"}

# The loss names `loss_for` knows, with their aliases.
_LOSSES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "sparse_ce": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "ce": "categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy",
    "bce": "binary_crossentropy",
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "huber": "huber",
    "log_cosh": "log_cosh",
    "msle": "msle",
    "mean_squared_logarithmic_error": "msle",
}
LOSS_NAMES = sorted(set(_LOSSES.values()))
_CROSS_ENTROPY = {
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
}


def initializer_name(activation: str) -> str:
    """The Keras initializer name for a layer feeding `activation`."""
    if activation in HE_ACTIVATIONS:
        return "he_normal"
    if activation in LECUN_ACTIVATIONS:
        return "lecun_normal"
    return "glorot_uniform"


def kernel_regularizer(l1: float = 0.0, l2: float = 0.0):
    """A Keras L1/L2 kernel regularizer, or None when both are 0 (`--l1`, `--l2`).

        layer.kernel_regularizer = kernel_regularizer(l2=1e-4)

    Raises:
        UsageError: a negative strength.
    """
    import keras

    for flag, value in (("--l1", l1), ("--l2", l2)):
        if value is None or value < 0:
            raise UsageError(f"{flag} must be >= 0. Received: {flag} {value}", f"e.g. {flag} 1e-4")
    if not l1 and not l2:
        return None
    return keras.regularizers.L1L2(l1=float(l1), l2=float(l2))


def kernel_constraint(max_norm: float | None):
    """A `keras.constraints.MaxNorm` on each unit's incoming weights, or None (`--max-norm`).

    Raises:
        UsageError: max_norm <= 0.
    """
    import keras

    if max_norm is None:
        return None
    if not max_norm > 0:
        raise UsageError(
            f"--max-norm must be > 0. Received: --max-norm {max_norm}", "e.g. --max-norm 3"
        )
    # axis=0: the norm of the weights feeding each output unit (Dense kernel is (in, out)).
    return keras.constraints.MaxNorm(max_value=float(max_norm), axis=0)


def build_layers(
    specs: list[LayerSpec],
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    seed: int | None = None,
    name_prefix: str = "head",
    input_shape: tuple | None = None,
) -> list:
    """Fresh Keras layers for `specs`, named `<prefix>_<kind>_<n>` (n counts per kind from 1)
    unless a spec has `name=`.

    Dense layers get an initializer for their activation, the regularizers and the
    constraint; the other layers are built as `reuse.surgery.layer_spec.make_layer` builds
    them for `--arch`.

        layers = build_layers(parse_layer_spec("dense:100:elu,dense:5:softmax"), l2=1e-4, seed=0)
        x = features
        for layer in layers:
            x = layer(x)

    Args:
        specs: from `reuse.surgery.layer_spec.parse_layer_spec` or `auto_head`.
        l1: L1 strength on every dense kernel.
        l2: L2 strength on every dense kernel.
        max_norm: max-norm constraint on every dense kernel.
        seed: seeds initializers, dropout and noise (each layer gets seed + its position);
            None leaves them to Keras' global seed.
        name_prefix: layer name prefix.
        input_shape: per-sample input shape of the head; only `gap` uses it, to pick the
            1D/2D/3D pooling (2D when None).

    Returns:
        The layers, bottom to top.

    Raises:
        SpecError: `gap` on an input without spatial axes.
        UsageError: negative l1/l2 or max_norm <= 0.
    """
    import keras

    regularizer_args = (l1, l2)
    kernel_regularizer(*regularizer_args)  # validate once, before building anything
    constraint = kernel_constraint(max_norm)
    layers = []
    for i, (spec, name) in enumerate(zip(specs, layer_names(specs, name_prefix), strict=True)):
        layer_seed = None if seed is None else int(seed) + i
        kernel_args = None
        if spec.kind == "dense":
            init_for = _effective_activation(specs, i)
            kernel_args = {
                "kernel_initializer": keras.initializers.get(
                    {"class_name": initializer_name(init_for), "config": {"seed": layer_seed}}
                ),
                "kernel_regularizer": kernel_regularizer(*regularizer_args),
                "kernel_constraint": constraint,
            }
        # input_shape is the head's input: only a gap uses it, wherever it stands.
        layers.append(
            make_layer(
                spec, name, input_shape=input_shape, seed=layer_seed, kernel_args=kernel_args
            )
        )
    return layers


def _effective_activation(specs: list[LayerSpec], i: int) -> str:
    """The activation that follows dense layer `i`: its own, or a later `activation:` layer."""
    own = specs[i].activation or "linear"
    if own != "linear":
        return own
    for later in specs[i + 1 :]:
        if later.kind == "activation":
            return later.activation or "linear"
        if later.kind in ("dense", "flatten", "gap"):
            break
    return own


def auto_head(y, *, loss: str | None = None) -> tuple[list[LayerSpec], str, list[str]]:
    """The output layer, loss and metrics that fit labels `y` (`--head auto`).

    Integer labels with more than two classes: `dense:k:softmax` and sparse categorical
    cross-entropy (k = max label + 1). One column of 0/1: `dense:1:sigmoid` and binary
    cross-entropy. A one-hot matrix: softmax and categorical cross-entropy; other 0/1 matrices
    (multi-label): sigmoid and binary. Anything else: `dense:n:linear` and MSE. `loss`
    (`--loss`) overrides the choice, and the output activation follows it.

        specs, loss, metrics = auto_head(np.array([0, 3, 1, 2]))
        # [LayerSpec('dense', 4, 'softmax')], 'sparse_categorical_crossentropy', ['accuracy']

    Args:
        y: the training labels.
        loss: a loss name from `LOSS_NAMES` (or an alias), or None to choose from the labels.

    Returns:
        (specs, loss_name, metrics): the one-layer head, the canonical loss name, and metric
        names for `compile`.

    Raises:
        DataError: no labels, or labels that the requested loss cannot use.
        SpecError: an unknown loss name.
    """
    if y is None:
        raise DataError(
            "the data has no labels, so --head auto cannot size the output",
            "give data with labels (y), or --labels for .npy inputs",
        )
    y = np.asarray(y)
    if y.size == 0:
        raise DataError("the data has no rows", "check --data and the selection flags")
    loss_name = canonical_loss(loss) if loss else _loss_from_labels(y)
    cols = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if loss_name == "sparse_categorical_crossentropy":
        classes = check_labels(y, loss_name)
        return [LayerSpec("dense", units=classes, activation="softmax")], loss_name, ["accuracy"]
    check_labels(y, loss_name)
    if loss_name == "categorical_crossentropy":
        return [LayerSpec("dense", units=cols, activation="softmax")], loss_name, ["accuracy"]
    if loss_name == "binary_crossentropy":
        return [LayerSpec("dense", units=cols, activation="sigmoid")], loss_name, ["accuracy"]
    return [LayerSpec("dense", units=cols, activation="linear")], loss_name, ["mae"]


def _is_integral(y: np.ndarray) -> bool:
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        return True
    return bool(
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )


def _loss_from_labels(y: np.ndarray) -> str:
    binary_values = _is_integral(y) and set(np.unique(y).tolist()) <= {0, 1}
    is_int = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        if binary_values:
            return "binary_crossentropy"
        if is_int:
            return "sparse_categorical_crossentropy"
        return "mse"
    if binary_values:
        one_hot = y.ndim == 2 and np.all(y.reshape(len(y), -1).sum(axis=1) == 1)
        return "categorical_crossentropy" if one_hot else "binary_crossentropy"
    return "mse"


def canonical_loss(name: str) -> str:
    """The canonical name of a loss (`bce` -> `binary_crossentropy`).

    Raises:
        SpecError: an unknown name, with the closest known ones.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in _LOSSES:
        raise SpecError(f"unknown loss '{name}'", _spec.did_you_mean(key, LOSS_NAMES))
    return _LOSSES[key]


def check_labels(y, loss_name: str, units: int | None = None) -> int | None:
    """Check that labels `y` fit a loss and (optionally) an output of `units` units.

        check_labels(y, "sparse_categorical_crossentropy", units=5)   # labels 0..4 only

    Args:
        y: the labels.
        loss_name: a loss name (aliases accepted).
        units: the width of the model's output, when known.

    Returns:
        The number of classes for sparse categorical labels (max + 1), else None.

    Raises:
        DataError: labels the loss cannot use, or more classes than output units.
    """
    y = np.asarray(y)
    loss_name = canonical_loss(loss_name)
    cols = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if loss_name == "sparse_categorical_crossentropy":
        if not _is_integral(y) or (y.ndim > 1 and cols != 1):
            raise DataError(
                f"sparse categorical cross-entropy needs one integer class label per row; the labels "
                f"have shape {y.shape} and dtype {y.dtype}",
                "use --loss categorical_crossentropy for one-hot labels, or mse for real-valued targets",
            )
        if y.min() < 0:
            raise DataError(
                f"class labels must be >= 0. Received: a label {int(y.min())}",
                "remap the labels (e.g. --classes 5-9 maps 5..9 to 0..4)",
            )
        classes = int(y.max()) + 1
        if units is not None and classes > units:
            raise DataError(
                f"the labels go up to {classes - 1} but the head's output has {units} units",
                f"end the head with dense:{classes}:softmax, or use --head auto",
            )
        return max(classes, 2)
    if loss_name in ("binary_crossentropy", "categorical_crossentropy"):
        if not np.issubdtype(y.dtype, np.number) and y.dtype != bool:
            raise DataError(
                f"{loss_name} needs numeric labels. Received dtype {y.dtype}", "check the labels"
            )
        if y.min() < 0 or y.max() > 1:
            raise DataError(
                f"{loss_name} needs labels between 0 and 1. Received: labels from {y.min():g} to {y.max():g}",
                "integer class labels use --loss sparse_categorical_crossentropy (or --head auto)",
            )
    if units is not None and cols != units:
        raise DataError(
            f"the labels have {cols} column(s) but the head's output has {units} units",
            f"end the head with dense:{cols}:..., or use --head auto",
        )
    return None


def loss_for(name: str, label_smoothing: float = 0.0):
    """The Keras loss object for `name`, with `--label-smoothing` applied.

    Keras 3's SparseCategoricalCrossentropy has no `label_smoothing`, so a non-zero smoothing
    on sparse labels uses `reuse.surgery.keras_objects.SmoothedSparseCategoricalCrossentropy` (the
    integer labels are one-hot encoded inside the loss; it saves and reloads with the model).

        model.compile(optimizer="adam", loss=loss_for("sparse_categorical_crossentropy", 0.1))

    Args:
        name: a loss name (`LOSS_NAMES` or an alias).
        label_smoothing: in [0, 1); only for cross-entropy losses.

    Returns:
        A `keras.losses.Loss`.

    Raises:
        SpecError: unknown loss name.
        UsageError: smoothing out of range, or given for a regression loss.
    """
    import keras

    canon = canonical_loss(name)
    ls = float(label_smoothing or 0.0)
    if not 0.0 <= ls < 1.0:
        raise UsageError(
            f"--label-smoothing must be in [0, 1). Received: --label-smoothing {label_smoothing}",
            "e.g. --label-smoothing 0.1",
        )
    if ls and canon not in _CROSS_ENTROPY:
        raise UsageError(
            f"--label-smoothing applies to cross-entropy losses, not {canon}",
            "drop --label-smoothing, or use a classification loss",
        )
    if canon == "sparse_categorical_crossentropy":
        if ls:
            from reuse.surgery.keras_objects import SmoothedSparseCategoricalCrossentropy

            return SmoothedSparseCategoricalCrossentropy(label_smoothing=ls)
        return keras.losses.SparseCategoricalCrossentropy()
    if canon == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=ls)
    if canon == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(label_smoothing=ls)
    return {
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
        "log_cosh": keras.losses.LogCosh,
        "msle": keras.losses.MeanSquaredLogarithmicError,
    }[canon]()
