"""Mixed precision on a built model: Keras dtype policies set layer by layer.

A loaded `.keras` model keeps the dtype policy each layer was saved with, so Keras' global
`keras.mixed_precision.set_dtype_policy` does not reach it. `set_mixed_precision` gives every
layer the policy `mixed_float16` or `mixed_bfloat16` (weights stay float32, the layer computes
in 16 bits and casts its inputs), except the layers that produce the model's outputs, which
stay float32 so that softmax and the loss see float32. `set_mixed_precision(model, None)` puts
every layer back on float32. The loss scaling float16 needs is `reuse.training.precision`.
"""

from __future__ import annotations

from reuse.core.errors import UsageError

POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(mixed_precision: str | None) -> str:
    """The Keras policy for `--mixed-precision` (None: float32).

    Raises:
        UsageError: not float16 or bfloat16.
    """
    if mixed_precision is None:
        return "float32"
    if mixed_precision not in POLICIES:
        raise UsageError(
            f"--mixed-precision must be float16 or bfloat16. Received: {mixed_precision!r}",
            "use --mixed-precision bfloat16 (no loss scaling needed) or float16",
        )
    return POLICIES[mixed_precision]


def set_mixed_precision(model, mixed_precision: str | None) -> None:
    """Set every layer's dtype policy for `mixed_precision` ("float16", "bfloat16" or None
    for float32); the layers that produce the model's outputs stay float32. In place."""
    from reuse.surgery.layer_tree import leaves

    policy = policy_name(mixed_precision)
    outputs = {id(t._keras_history[0]) for t in model.outputs}
    for entry in leaves(model):
        layer = entry.layer
        if type(layer).__name__ == "InputLayer":
            continue
        layer.dtype_policy = "float32" if id(layer) in outputs else policy
