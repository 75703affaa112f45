"""Keras objects that `reuse` adds and saves inside models: three schedules and one loss.

This module imports Keras at the top because the classes subclass Keras types. It is imported
only when Keras is already needed: by `reuse.training.schedules` / `reuse.surgery.heads` inside their functions,
and by `reuse.formats.model_io` before it loads a model, so that a saved `.keras` file whose optimizer
uses one of these schedules (or whose loss is the smoothed sparse cross-entropy) reloads with
`compile=True`. Each class's `get_config()` returns exactly its `__init__` arguments.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from reuse.core.errors import SpecError

_SCHEDULE = keras.optimizers.schedules.LearningRateSchedule


def _positive(name: str, value) -> None:
    if not value > 0:
        raise SpecError(f"`{name}` must be > 0. Received: {name}={value}", f"give {name} > 0")


@keras.saving.register_keras_serializable(package="reuse")
class NaturalExpDecay(_SCHEDULE):
    """lr = initial_learning_rate · exp(−decay_rate · t / decay_steps) (floored t/decay_steps if staircase).

    The natural-exponential decay of TF1's `natural_exp_decay`, which Keras 3 dropped.

        sched = NaturalExpDecay(0.1, decay_steps=100, decay_rate=0.5)
        float(sched(100))  # 0.1 * exp(-0.5) = 0.0607

    Args:
        initial_learning_rate: lr at step 0.
        decay_steps: steps per unit of `t` in the exponent (> 0).
        decay_rate: k in exp(−k·t) (>= 0).
        staircase: decay in whole multiples of `decay_steps`.
        name: name of the schedule.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="NaturalExpDecay",
    ):
        super().__init__()
        _positive("decay_steps", decay_steps)
        if decay_rate < 0:
            raise SpecError(
                f"`decay_rate` must be >= 0. Received: decay_rate={decay_rate}",
                "give decay_rate >= 0",
            )
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        p = ops.divide(ops.cast(step, dtype), ops.cast(self.decay_steps, dtype))
        if self.staircase:
            p = ops.floor(p)
        return ops.multiply(lr, ops.exp(ops.multiply(-ops.cast(self.decay_rate, dtype), p)))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="reuse")
class PowerDecay(_SCHEDULE):
    """lr = initial_learning_rate / (1 + t / decay_steps) ** power — power scheduling.

        sched = PowerDecay(0.1, decay_steps=100, power=1.0)
        float(sched(100))  # 0.1 / 2 = 0.05

    Args:
        initial_learning_rate: lr at step 0.
        decay_steps: s, the steps after which lr is divided by 2**power (> 0).
        power: c, the exponent (>= 0); 1 gives lr0 / (1 + t/s).
        name: name of the schedule.
    """

    def __init__(self, initial_learning_rate, decay_steps, power=1.0, name="PowerDecay"):
        super().__init__()
        _positive("decay_steps", decay_steps)
        if power < 0:
            raise SpecError(f"`power` must be >= 0. Received: power={power}", "give power >= 0")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.power = power
        self.name = name

    def __call__(self, step):
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        base = ops.add(1.0, ops.divide(ops.cast(step, dtype), ops.cast(self.decay_steps, dtype)))
        return ops.divide(lr, ops.power(base, ops.cast(self.power, dtype)))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="reuse")
class OneCycle(_SCHEDULE):
    """The 1cycle policy: lr rises from max_lr/div to max_lr, then falls to max_lr/(div·final_div).

    The rise takes the first `pct_start` of `total_steps`, the fall the rest; after
    `total_steps` lr stays at the minimum. `anneal="cos"` follows half a cosine in each phase
    (as PyTorch's OneCycleLR and fastai); `"linear"` moves in straight lines (Smith, 2018).

        sched = OneCycle(0.01, total_steps=100)
        float(sched(30))  # 0.01, the peak

    Args:
        max_lr: the peak learning rate (> 0).
        total_steps: length of the cycle in steps (> 0).
        pct_start: fraction of the cycle spent rising, in (0, 1).
        div_factor: start lr = max_lr / div_factor (>= 1).
        final_div_factor: final lr = start lr / final_div_factor (>= 1).
        anneal: "cos" or "linear".
        name: name of the schedule.
    """

    def __init__(
        self,
        max_lr,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal="cos",
        name="OneCycle",
    ):
        super().__init__()
        _positive("max_lr", max_lr)
        _positive("total_steps", total_steps)
        if not 0 < pct_start < 1:
            raise SpecError(
                f"`pct` must be between 0 and 1. Received: pct={pct_start}", "e.g. pct=0.3"
            )
        for key, value in (("div", div_factor), ("final_div", final_div_factor)):
            if not value >= 1:
                raise SpecError(f"`{key}` must be >= 1. Received: {key}={value}", f"e.g. {key}=25")
        if anneal not in ("cos", "linear"):
            raise SpecError(
                f"`anneal` must be cos or linear. Received: anneal={anneal}", "e.g. anneal=cos"
            )
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.anneal = anneal
        self.name = name

    def _anneal(self, start, end, p):
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (1.0 + ops.cos(math.pi * p))
        return start * (1.0 - p) + end * p  # exact at both ends, unlike start + (end - start) * p

    def __call__(self, step):
        peak = ops.convert_to_tensor(self.max_lr)
        dtype = peak.dtype
        start = peak / self.div_factor
        low = start / self.final_div_factor
        t = ops.cast(step, dtype)
        rise = ops.cast(self.pct_start * self.total_steps, dtype)
        fall = ops.cast(self.total_steps, dtype) - rise
        p_up = ops.clip(t / rise, 0.0, 1.0)
        p_down = ops.clip((t - rise) / fall, 0.0, 1.0)
        return ops.where(
            t <= rise, self._anneal(start, peak, p_up), self._anneal(peak, low, p_down)
        )

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal": self.anneal,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="reuse")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing.

    Keras 3's own `SparseCategoricalCrossentropy` has no `label_smoothing`; this one one-hots
    the integer labels to the prediction width and applies Keras' categorical cross-entropy
    with smoothing, so the data pipeline keeps its integer labels.

        loss = SmoothedSparseCategoricalCrossentropy(label_smoothing=0.1)
        loss(np.array([2]), np.array([[0.1, 0.1, 0.8]]))

    Args:
        label_smoothing: in [0, 1); 0 is plain sparse cross-entropy.
        from_logits: predictions are logits rather than probabilities.
        reduction: Keras reduction.
        name: name of the loss.
    """

    def __init__(
        self,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
    ):
        super().__init__(name=name, reduction=reduction)
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(y_true, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
            "reduction": self.reduction,
            "name": self.name,
        }
