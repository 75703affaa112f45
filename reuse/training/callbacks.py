"""Keras callbacks of a stage: history rows, resumable early stopping, divergence guard, hooks.

They are built lazily on `keras.callbacks.Callback` (so importing this module does not import
Keras) and receive the calls that `reuse.training.loop.fit_arrays` makes, as `Model.fit` would.
"""

from __future__ import annotations

import math
import time

import numpy as np


def learning_rate_now(model) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


class WeightSnapshot:
    """Copies of a model's weights as NumPy arrays, read in one compiled call.

    `model.get_weights()` reads each variable with its own eager call; the divergence guard
    copies the weights after every epoch, so on a small head that cost 1.3 ms an epoch.
    `take()` returns what `get_weights()` returns (same order, same values) in one call.
    Under a `tf.distribute` strategy it falls back to `get_weights()`.
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._read = None
        if not tf.distribute.has_strategy():
            variables = list(model.weights)
            self._read = tf.function(lambda: [tf.identity(v) for v in variables])

    def take(self) -> list[np.ndarray]:
        if self._read is None:
            return [np.array(w) for w in self.model.get_weights()]
        return [np.array(t) for t in self._read()]


def keras_callback_base():
    import keras

    return keras.callbacks.Callback


class HistoryRecorder:  # built lazily on a keras Callback base (see __new__)
    def __new__(cls, *args, **kwargs):
        base = keras_callback_base()

        class Recorder(base):
            def __init__(self, plan, history, model_to_fit, started):
                super().__init__()
                self.plan, self.rows, self.fit_model, self.started = (
                    plan,
                    history,
                    model_to_fit,
                    started,
                )

            def on_epoch_end(self, epoch, logs=None):
                # `epoch` counts over all stages (fit's initial_epoch); the stage's own count
                # restarts at 1, and a resumed stage continues it (its rows are restored).
                done = sum(1 for r in self.rows if r.get("stage") == self.plan.index)
                row = {
                    "stage": self.plan.index,
                    "epoch": len(self.rows) + 1,
                    "stage_epoch": done + 1,
                }
                row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
                lr = (logs or {}).get("learning_rate")
                row["lr"] = float(lr) if lr is not None else learning_rate_now(self.fit_model)
                row["tap"] = self.plan.tap or "input"
                row["seconds"] = round(time.perf_counter() - self.started, 3)
                self.rows.append(row)

        return Recorder(*args, **kwargs)


class StageEarlyStopping:
    """Tracks the best epoch of a stage; with a patience, stops and keeps the best weights.

    Unlike keras.callbacks.EarlyStopping its state lives in a StageProgress, so a resumed stage
    continues counting where the checkpoint left off.
    """

    def __new__(cls, monitor, patience, progress):
        base = keras_callback_base()

        class Stopper(base):
            snapshot = None

            def should_stop_now(self):
                return (
                    patience is not None
                    and progress.wait >= max(patience, 1)
                    and progress.epochs_done > 0
                )

            def on_epoch_end(self, epoch, logs=None):
                progress.epochs_done += 1
                value = (logs or {}).get(monitor)
                if (
                    value is not None
                    and math.isfinite(float(value))
                    and (progress.best is None or value < progress.best)
                ):
                    progress.best, progress.wait = float(value), 0
                    if patience is not None:
                        if self.snapshot is None:
                            self.snapshot = WeightSnapshot(self.model)
                        progress.best_weights = self.snapshot.take()
                else:
                    progress.wait += 1
                if self.should_stop_now():
                    self.model.stop_training = True

        return Stopper()


class EpochHook:
    def __new__(cls, func):
        base = keras_callback_base()

        class Hook(base):
            def on_epoch_end(self, epoch, logs=None):
                func(epoch)

        return Hook()


class DivergenceGuard:
    """Stops a stage at the first NaN/Inf loss and can restore the last good epoch's weights."""

    def __new__(cls, *args, **kwargs):
        base = keras_callback_base()

        class Guard(base):
            def __init__(self):
                super().__init__()
                self.diverged = False
                self.good = None

            def on_train_begin(self, logs=None):
                self.snapshot = WeightSnapshot(self.model)
                self.good = self.snapshot.take()

            def on_epoch_end(self, epoch, logs=None):
                # fit_arrays ends an epoch at the first batch whose loss is not finite.
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.diverged = True
                    self.model.stop_training = True
                if not self.diverged:
                    self.good = self.snapshot.take()

            def restore(self):
                if self.good is not None:
                    self.model.set_weights(self.good)

        return Guard()


class EpochBar:
    """Advances a `reuse.core.report.bar` after every epoch, showing the epoch's loss (and the
    validation loss when there is one)."""

    def __new__(cls, shown_bar):
        base = keras_callback_base()

        class Bar(base):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                status = "  ".join(
                    f"{k} {float(logs[k]):.4g}" for k in ("loss", "val_loss") if k in logs
                )
                shown_bar.advance(status)

        return Bar()
