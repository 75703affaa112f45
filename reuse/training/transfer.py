"""The transfer model: the base cut at a layer, a new head on top, and who trains.

`build_transfer_model` cuts the base (`reuse.surgery.cuts`), builds the head
(`reuse.surgery.heads`) and records which leaf layers are reused; `apply_trainable` sets
exactly the layers a stage trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reuse.core.errors import DataError, UsageError
from reuse.training.options import FinetuneOptions


@dataclass
class TransferModel:
    """The whole model (reused layers + new head) and what each part is."""

    model: object
    reused: list[str]  # leaf layer paths below and including the cut, bottom first
    head: list[str]  # names of the new layers
    cut: str
    loss: object
    metrics: list
    task: str  # "multiclass", "binary", "regression"


def default_cut(model) -> str:
    """The reused layers end below the output layer by default; a model that is one frozen
    SavedModel block (a SavedModel folder loaded by reuse) is reused whole, cut at the block.

    Raises:
        UsageError: the model has fewer than two layers and is not a SavedModel block.
    """
    import keras

    from reuse.surgery.layer_tree import leaves

    entries = [e for e in leaves(model) if type(e.layer).__name__ != "InputLayer"]
    names = [e.path for e in entries]
    if len(entries) == 1 and isinstance(entries[0].layer, keras.layers.TFSMLayer):
        return names[0]
    if len(names) < 2:
        raise UsageError(
            "the model has fewer than two layers, so there is nothing to reuse",
            "pass a deeper model",
        )
    return names[-2]


def label_task(y: np.ndarray) -> str:
    """multiclass / binary / regression, from the labels (SPEC "Data")."""
    if y is None:
        raise DataError("the data has no labels", "pass labels (--labels, --y-key, --label-col)")
    if np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_):
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            values = np.unique(y)
            if set(values.tolist()) <= {0, 1} and y.ndim == 2:
                return "binary"
            return "multiclass"
    if y.ndim == 2 and y.shape[1] == 1 and set(np.unique(y).tolist()) <= {0.0, 1.0}:
        return "binary"
    return "regression"


def build_transfer_model(base, y: np.ndarray, options: FinetuneOptions) -> TransferModel:
    """Cut `base` at options.cut (default: below the output layer) and add the new head."""
    import keras

    from reuse.surgery import cuts, heads, layer_kinds, layer_spec
    from reuse.surgery.layer_tree import find, leaves

    cut = options.cut or default_cut(base)
    find(base, cut)  # LayerNotFound with suggestions
    cuts.check_cut(base, cut)
    bottom = cuts.bottom_model(base, [cut])
    specs, loss_name, metrics = heads.auto_head(y, loss=options.loss)
    if options.head and options.head != "auto":
        specs = layer_spec.parse_layer_spec(options.head)
        heads.check_labels(y, loss_name, units=getattr(specs[-1], "units", None))
    if options.dropout:
        specs = layer_spec.parse_layer_spec(f"dropout:{options.dropout}") + list(specs)
    x = bottom.outputs[0]
    head_layers = heads.build_layers(
        specs,
        l1=options.l1,
        l2=options.l2,
        max_norm=options.max_norm,
        seed=options.seed,
        name_prefix="head",
        input_shape=tuple(x.shape[1:]),
    )
    if len(x.shape) > 2 and not any(
        type(layer).__name__ in layer_kinds.TO_VECTOR for layer in head_layers
    ):
        # A dense head on a feature map needs it flattened, as in the usual GAP + Dense pattern.
        head_layers.insert(
            0,
            keras.layers.GlobalAveragePooling2D(name="head_gap")
            if len(x.shape) == 4
            else keras.layers.Flatten(name="head_flatten"),
        )
    for layer in head_layers:
        x = layer(x)
    model = keras.Model(bottom.inputs, x, name=f"{base.name}_reuse")
    reused = [e.path for e in leaves(bottom) if type(e.layer).__name__ != "InputLayer"]
    loss = heads.loss_for(loss_name, options.label_smoothing)
    return TransferModel(
        model=model,
        reused=reused,
        head=[layer.name for layer in head_layers],
        cut=cut,
        loss=loss,
        metrics=metrics,
        task=label_task(y),
    )


def apply_trainable(
    transfer: TransferModel, trainable: list[str], *, train_bn: bool = False
) -> list[str]:
    """Make exactly `trainable` (reused leaf paths) and the head trainable; freeze the rest.

    BatchNormalization layers among the reused ones stay frozen (inference mode) unless
    `train_bn`: with small data, their batch statistics would be noisier than the stored ones.

    Returns:
        The reused layers that do train now: those of `trainable` that have trainable weights
        (not Dropout, Flatten, pooling; not a BatchNormalization kept frozen), in the order
        of `trainable`.
    """
    from reuse.surgery.freezing import set_trainable
    from reuse.surgery.layer_tree import leaves

    wanted = set(trainable)
    head = set(transfer.head)

    def flag(entry) -> bool:
        if entry.path in head:
            return True
        if entry.path not in wanted:
            return False
        return train_bn or type(entry.layer).__name__ != "BatchNormalization"

    entries = leaves(transfer.model)
    set_trainable(transfer.model, {e.path: flag(e) for e in entries})
    freeze_bases(transfer.model)
    trains = {e.path for e in entries if e.path in wanted and flag(e) and e.layer.trainable_weights}
    return [p for p in trainable if p in trains]


# The weights `enable_lora` adds (Dense/EinsumDense/Conv: kernel; Embedding: embeddings).
LORA_VARS = ("lora_kernel_a", "lora_kernel_b", "lora_embeddings_a", "lora_embeddings_b")


def is_lora_var(variable) -> bool:
    """Whether `variable` is a LoRA adapter matrix (A or B) added by Keras' `enable_lora`."""
    return variable.name in LORA_VARS


def freeze_bases(model) -> None:
    """Keep every weight of a LoRA layer but its adapters frozen, bit for bit (Keras'
    `trainable` setter would make the kernel and bias train again). No-op without LoRA."""
    from reuse.surgery.layer_tree import leaves

    for entry in leaves(model):
        if getattr(entry.layer, "lora_enabled", False):
            for variable in entry.layer.weights:
                if not is_lora_var(variable):
                    variable.trainable = False


def regularize_reused(
    transfer: TransferModel, trainable: list[str], options: FinetuneOptions
) -> None:
    """--l1/--l2/--max-norm apply to every trained kernel: the head's, and unfrozen reused ones."""
    if not (options.l1 or options.l2 or options.max_norm):
        return
    from reuse.surgery import heads
    from reuse.surgery.layer_tree import find

    for path in trainable:
        layer = find(transfer.model, path).layer
        kernel = getattr(layer, "kernel", None)
        if kernel is None or getattr(layer, "lora_enabled", False):
            continue
        # On the variable (what training uses) and on the layer (what its config saves).
        if options.l1 or options.l2:
            kernel.regularizer = heads.kernel_regularizer(options.l1, options.l2)
            if hasattr(layer, "kernel_regularizer"):
                layer.kernel_regularizer = kernel.regularizer
        if options.max_norm:
            kernel.constraint = heads.kernel_constraint(options.max_norm)
            if hasattr(layer, "kernel_constraint"):
                layer.kernel_constraint = kernel.constraint
