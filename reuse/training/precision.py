"""Mixed-precision training: the dtype policies (`reuse.surgery.precision`) and loss scaling.

float16 has a narrow range: small gradients underflow to zero. `loss_scaled` wraps a stage's
optimizer in Keras' `LossScaleOptimizer` for float16 (dynamic loss scaling: the loss is
multiplied before the gradients are taken and the gradients divided back; a step whose
gradients overflow is skipped and the scale halved). `fit_arrays` calls the model's own
`train_step`, which scales the loss whenever the optimizer is a LossScaleOptimizer, so the
loop itself needs nothing else. bfloat16 has float32's range and needs no scaling.
"""

from __future__ import annotations


def loss_scaled(optimizer, mixed_precision: str | None):
    """`optimizer` wrapped in a LossScaleOptimizer for float16; as it is otherwise."""
    if mixed_precision != "float16":
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)
