"""Keras' `fit` for data held in memory, without the per-batch input pipeline.

`model.fit(x, y)` on NumPy arrays feeds every batch through a `tf.data` pipeline and, even with
`steps_per_execution`, pays about 0.4 ms per batch for it. On features cached above frozen
layers the model that trains is often a small head, so that fixed cost was most of an epoch:
0.11 s of an epoch on the MNIST 5x100 bench (`bench/bench_finetune.py`), where the head itself
needs 0.03 s.

`fit_arrays` keeps the arrays as tensors and gathers each shuffled batch inside one compiled
loop that calls the model's own `train_step`, so everything `compile` set up still applies:
the loss, label smoothing, the metrics, regularization losses, clipping, learning-rate
schedules that read `optimizer.iterations`, and a model's overridden `train_step` (see
`reuse.training.discriminative`). Callbacks get the calls `fit` makes: train and epoch begin and end,
validation logs prefixed `val_`, `model.stop_training`. An epoch is one compiled call; when a
callback has batch-level hooks, they run once every `STEPS_PER_CALL` batches instead, as with
`fit(steps_per_execution=32)`. An epoch ends at the first batch whose loss is NaN or Inf (its
logs then show the non-finite loss), so a diverging run wastes no more work.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from reuse.core.errors import DataError

# Batches per compiled call when a callback has batch-level hooks.
STEPS_PER_CALL = 32
# Validation batches hold up to this many bytes of inputs (at least `batch_size` rows): no
# gradients are kept, and per-batch overhead, not arithmetic, is what a small validation
# set costs (150 MNIST rows: 8 batches of 20 took 4.4 ms an epoch, one batch 1 ms).
VALIDATION_BATCH_BYTES = 16 * 2**20
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


class _OwnRetracing:
    """Drops TensorFlow's retracing warning for this module's loops and their weight snapshots.

    Each call of `fit_arrays` compiles its loop, and `WeightSnapshot` its one read of the
    weights, for the model it trains (a stage of gradual unfreezing has other variables than
    the last), so several traces in one process are expected, not the mistake the warning
    describes.
    """

    OWN = ("Steps.__init__.<locals>", "WeightSnapshot.__init__.<locals>")

    @staticmethod
    def filter(record) -> bool:
        message = record.getMessage()
        return not any(own in message for own in _OwnRetracing.OWN)


def _quiet_retracing_warning() -> None:
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, _OwnRetracing) for f in logger.filters):
        logger.addFilter(_OwnRetracing())


def build_state(model, batch) -> None:
    """Create every variable a training step needs (the model's, the compiled loss's and
    metrics', the optimizer's slots) before the step is traced.

    Keras' TensorFlow trainer defers this to the first trace unless a `tf.distribute`
    strategy is set; variables created inside a `tf.function` make TensorFlow trace it
    twice and wrap every initializer in a `cond`. Building them first, as Keras does under
    a strategy (`Trainer._symbolic_build`, from symbolic tensors: no step is run), halves
    the compile time of a stage: 1.7 s to 0.7 s for a 4-layer MLP with Adam on this
    machine. Falls back to Keras' own deferred build if that private API changes.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None:  # pragma: no cover - a Keras without it
        model._maybe_symbolic_build(data_batch=batch)
        return
    with model.distribute_strategy.scope():
        symbolic_build(data_batch=batch)


def _as_tensor(array):
    """A tensor of `array`, floats in Keras' float type, as `fit`'s data adapter makes them."""
    import keras
    import tensorflow as tf

    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating) and array.dtype != keras.config.floatx():
        array = array.astype(keras.config.floatx())
    return tf.convert_to_tensor(array)


def _python_logs(logs: dict) -> dict:
    """Scalars as Python floats (as `fit` hands them to callbacks); other values as arrays."""
    values = {name: np.asarray(value) for name, value in logs.items()}
    return {name: float(v) if v.ndim == 0 else v for name, v in values.items()}


def has_batch_hooks(callbacks) -> bool:
    """Whether any callback overrides a training batch hook of keras.callbacks.Callback."""
    import keras

    base = keras.callbacks.Callback
    return any(
        getattr(type(cb), hook, None) is not getattr(base, hook)
        for cb in callbacks
        for hook in _BATCH_HOOKS
    )


def validation_batch_size(val_x, batch_size: int) -> int:
    """Rows per validation batch: as many as fit in `VALIDATION_BATCH_BYTES` of inputs, at
    least `batch_size`, at most every row. Metrics are means weighted by batch size, so the
    validation logs equal those of `batch_size` batches up to float rounding."""
    rows = int(val_x.shape[0])
    itemsize = np.dtype(getattr(val_x.dtype, "as_numpy_dtype", val_x.dtype)).itemsize
    row_bytes = max(1, math.prod(int(d) for d in val_x.shape[1:]) * itemsize)
    return max(1, min(rows, max(batch_size, VALIDATION_BATCH_BYTES // row_bytes)))


def shuffled_order(rows: int, seed: int | None, epoch: int) -> np.ndarray:
    """The order of the rows in `epoch`: a permutation fixed by (seed, epoch) when seeded."""
    rng = np.random.default_rng(None if seed is None else [seed, epoch])
    return rng.permutation(rows)


class LocalSteps:
    """The compiled training and evaluation steps of `fit_arrays` on one device.

    `start_epoch(order, view)` sets the epoch's row order (and augmented view);
    `train(count)` runs the next `count` batches in one compiled call and returns the metric
    results; `evaluate()` runs the validation rows; `reset_metrics()` zeroes the metrics.
    `ReplicatedSteps` (`reuse.training.distribute`) is the same interface under a
    `tf.distribute` strategy.
    """

    def __init__(self, model, x_all, y_all, batch_size, *, views, augment, validation, val_batch):
        import tensorflow as tf

        from reuse.training.distribute import one_step

        self.steps = max(1, math.ceil(int(y_all.shape[0]) / batch_size))
        self._order = self._view = None
        self._first = 0

        @tf.function
        def train_steps(order, first, count, view):
            source = x_all[view] if views else x_all
            for step in tf.range(first, first + count):
                rows_now = order[step * batch_size : (step + 1) * batch_size]
                x_now, y_now = tf.gather(source, rows_now), tf.gather(y_all, rows_now)
                if not one_step(model, augment, x_now, y_now):
                    break
            return model.get_metrics_result()

        self._train_steps = train_steps
        # Zeroing the metric variables eagerly costs one dispatch per variable, 2 ms an epoch
        # on a small head (a tenth of its epoch); compiled, it is one call.
        self.reset_metrics = tf.function(model.reset_metrics)
        self._evaluate = None
        if validation is not None:
            val_x, val_y = validation
            val_steps = max(1, math.ceil(int(val_y.shape[0]) / val_batch))

            @tf.function
            def evaluate():
                for step in tf.range(val_steps):
                    start = step * val_batch
                    model.test_step(
                        (val_x[start : start + val_batch], val_y[start : start + val_batch])
                    )
                return model.get_metrics_result()

            self._evaluate = evaluate

    def start_epoch(self, order: np.ndarray, view: int) -> None:
        import tensorflow as tf

        self._order, self._view, self._first = tf.constant(order), tf.constant(view), 0

    def train(self, count: int):
        import tensorflow as tf

        logs = self._train_steps(
            self._order, tf.constant(self._first), tf.constant(count), self._view
        )
        self._first += count
        return logs

    def evaluate(self):
        return None if self._evaluate is None else self._evaluate()


def fit_arrays(
    model,
    x,
    y,
    *,
    batch_size: int,
    epochs: int,
    initial_epoch: int = 0,
    validation_data=None,
    callbacks=(),
    seed: int | None = None,
    augment=None,
    views: bool = False,
) -> list[dict]:
    """Train a compiled `model` on in-memory `x`, `y` like `model.fit(..., shuffle=True)`.

    Args:
        model: a compiled Keras model.
        x: inputs, shape (N, *input_shape); with `views`, (K, N, *input_shape): K augmented
            views of every row, and epoch e trains on view e mod K.
        y: targets, shape (N,) or (N, C).
        batch_size: rows per step; the last batch of an epoch may be smaller.
        epochs: the epoch to stop before (as in `fit`, counted from 0, not from `initial_epoch`).
        validation_data: (x_val, y_val), evaluated after each epoch, never augmented.
        callbacks: Keras callbacks, called as `fit` calls them.
        seed: fixes the shuffle order of each epoch (a permutation of (seed, epoch)).
        augment: a callable `(x_batch, y_batch) -> (x_batch, y_batch)` traced into the
            training step (an `reuse.augment.Augmenter`); training batches only.

    Inside a `tf.distribute` strategy's scope (`reuse.training.distribute`), the steps run
    replicated (`ReplicatedSteps`): `batch_size` is then the global batch, split across the
    replicas, and the model and its optimizer must have been made in that scope.

    Returns:
        The epoch logs (train metrics, then `val_`-prefixed ones), one dict per epoch run.

    Raises:
        UsageError: under a strategy, fewer rows than replicas.
        DataError: no rows, or `x` and `y` of different lengths.
    """
    import keras

    _quiet_retracing_warning()
    rows = len(y)
    if rows == 0:
        raise DataError("no rows to train on", "pass training data with at least one row")
    if (x.shape[1] if views else len(x)) != rows:
        raise DataError(
            f"fit_arrays: {x.shape[1] if views else len(x)} input rows but {rows} targets",
            "pass inputs and targets of the same length",
        )
    x_all, y_all = _as_tensor(x), _as_tensor(y)
    n_views = int(x_all.shape[0]) if views else 0
    first_batch = (x_all[0] if views else x_all)[:batch_size], y_all[:batch_size]
    if augment is not None:
        first_batch = augment(*first_batch)
    build_state(model, first_batch)
    validation = None
    if validation_data is not None:
        validation = tuple(_as_tensor(a) for a in validation_data)
    from reuse.training.distribute import ReplicatedSteps, active_strategy

    strategy = active_strategy()
    step_kind = LocalSteps if strategy is None else partial(ReplicatedSteps, strategy)
    runner = step_kind(
        model,
        x_all,
        y_all,
        batch_size,
        views=views,
        augment=augment,
        validation=validation,
        val_batch=validation_batch_size(validation[0], batch_size) if validation else batch_size,
    )
    steps = runner.steps

    callbacks = list(callbacks)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=False,
        add_progbar=False,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    steps_per_call = STEPS_PER_CALL if has_batch_hooks(callbacks) else steps
    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs: dict = {}
    all_logs: list[dict] = []
    for epoch in range(initial_epoch, epochs):
        runner.reset_metrics()
        if augment is not None and hasattr(augment, "reseed"):
            augment.reseed(epoch)  # the draws of epoch e depend on e only: resume-safe
        callback_list.on_epoch_begin(epoch)
        runner.start_epoch(shuffled_order(rows, seed, epoch), epoch % n_views if views else 0)
        logs: dict = {}
        for first in range(0, steps, steps_per_call):
            count = min(steps_per_call, steps - first)
            callback_list.on_train_batch_begin(first)
            logs = _python_logs(runner.train(count))
            callback_list.on_train_batch_end(first + count - 1, logs)
            if model.stop_training or not math.isfinite(logs.get("loss", 0.0)):
                break
        epoch_logs = dict(logs)
        if validation is not None:
            runner.reset_metrics()
            callback_list.on_test_begin()
            val_logs = _python_logs(runner.evaluate())
            callback_list.on_test_end(val_logs)
            epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        all_logs.append(epoch_logs)
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > initial_epoch:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    return all_logs
