"""Loss scaling under a `tf.distribute` strategy: `fit_arrays`' replicated steps run the
LossScaleOptimizer's own skip-and-halve on overflow. (Two CPU devices against one, through
the CLI, are in tests/e2e/test_lora_precision_distribute.py.)"""

from __future__ import annotations

import numpy as np

from tests.helpers import classification_data, mlp


def _read(variable):
    """The value of a Keras variable made under a strategy (a MirroredVariable inside)."""
    value = variable.value
    return np.asarray(value.read_value() if hasattr(value, "read_value") else value)


def test_float16_overflow_skips_the_step_and_halves_the_scale_under_a_strategy():
    import keras
    import tensorflow as tf

    from reuse.surgery.precision import set_mixed_precision
    from reuse.training.loop import fit_arrays

    x, y = classification_data(n=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = mlp(n_in=8, hidden=2, units=6)
        set_mixed_precision(model, "float16")
        # 2**40 times any gradient overflows float16 (max 65504): every step must be skipped.
        opt = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.Adam(1e-2), initial_scale=2.0**40
        )
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        before = [w.copy() for w in model.get_weights()]
        history = fit_arrays(model, x, y, batch_size=16, epochs=2, seed=0)
    assert all(np.isfinite(row["loss"]) for row in history)
    assert int(_read(opt.inner_optimizer.iterations)) == 0  # no update applied
    assert float(_read(opt.dynamic_scale)) == 2.0 ** (40 - 8)  # halved at each of 8 steps
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
