"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural
Networks"; fastai's `lr_find`): grow the learning rate exponentially, one batch per step, and
pick a rate from where the loss falls.

`sweep` is the measurement, `valley` and `steepest` are fastai's two rules for reading it, and
`WeightRestorer` puts a model back as it was (a sweep is a measurement, not training).
`stage_lr` runs a short sweep for one stage of fine-tuning (`--stage-lr find`); the
`reuse lr-find` command (`reuse.guide.lr_find`) runs a full one and plots it.
"""

from __future__ import annotations

import math

import numpy as np

RULES = ("valley", "steepest")


class WeightRestorer:
    """Remembers the weights, trainable flags and kernel regularizers of a model's layers."""

    def __init__(self, model):
        from reuse.surgery.layer_tree import walk

        self.variables = list(model.weights)
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.entries = walk(model)
        self.flags = [e.layer.trainable for e in self.entries]
        self.kernels = []
        for e in self.entries:
            kernel = getattr(e.layer, "kernel", None) if not e.is_container else None
            if kernel is not None:
                self.kernels.append(
                    (
                        kernel,
                        getattr(kernel, "regularizer", None),
                        getattr(kernel, "constraint", None),
                    )
                )

    def restore(self) -> None:
        # Containers first, as in apply_trainable: a container's flag resets its contents.
        for entry, flag in zip(self.entries, self.flags, strict=True):
            if entry.is_container:
                entry.layer.trainable = flag
        for entry, flag in zip(self.entries, self.flags, strict=True):
            if not entry.is_container:
                entry.layer.trainable = flag
        for kernel, regularizer, constraint in self.kernels:
            kernel.regularizer = regularizer
            kernel.constraint = constraint
        for variable, value in zip(self.variables, self.values, strict=True):
            variable.assign(value)


def sweep(
    train_model, optimizer, x, y, options, start, end, steps, stop_factor, smooth, augment=None
):
    """One batch per step at lr = start * (end/start)^(i/(steps-1)); stop when the loss explodes."""
    rng = np.random.default_rng(options.seed)
    n = len(y)
    batch = min(options.batch_size, n)
    order = rng.permutation(n)
    cursor = 0
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    ratio = (end / start) ** (1.0 / (steps - 1))
    for i in range(steps):
        lr = start * ratio**i
        if cursor + batch > n:
            order, cursor = rng.permutation(n), 0
        rows = np.sort(order[cursor : cursor + batch])
        cursor += batch
        optimizer.learning_rate = lr
        xb, yb = x[rows], y[rows]
        if augment is not None:
            xb, yb = (np.asarray(a) for a in augment(xb, yb))
        loss = float(np.asarray(train_model.train_on_batch(xb, yb)).reshape(-1)[0])
        if not math.isfinite(loss):
            return lrs, losses, smoothed, True
        average = smooth * average + (1 - smooth) * loss
        value = average / (1 - smooth ** (i + 1))
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if i > 0 and value > stop_factor * best:
            return lrs, losses, smoothed, True
    return lrs, losses, smoothed, False


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the loss falls fastest against log(lr) (fastai's `steep`).

    The slope is measured over a window of a tenth of the sweep on each side, so step-to-step
    noise on the plateau does not pass for a fall, and only the part before the lowest loss
    counts, so the blow-up is not mistaken for one either.

    Example:
        >>> steepest([1e-4, 1e-3, 1e-2, 1e-1, 1], [2.0, 1.9, 1.0, 0.9, 5.0])
        0.001
    """
    values = np.asarray(losses, dtype=float)
    logs = np.log10(np.asarray(lrs, dtype=float))
    n = len(values)
    if n < 3:
        return float(lrs[0])
    k = max(1, n // 10)
    upto = max(1, int(np.argmin(values)))
    best, pick = math.inf, 0
    for i in range(upto + 1):
        lo, hi = max(0, i - k), min(n - 1, i + k)
        slope = (values[hi] - values[lo]) / (logs[hi] - logs[lo])
        if slope < best:
            best, pick = slope, i
    return float(lrs[pick])


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's `valley` rule: the longest descending run of the loss curve, 2/3 of the way down.

    It finds the longest strictly decreasing subsequence of the loss and picks the rate half a
    third past its first third, which lands inside the valley, before the minimum (where the
    loss is about to blow up).

    Example:
        >>> valley([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1], [2.3, 2.3, 2.2, 1.8, 1.1, 0.7, 9.0])
        1e-05
    """
    n = len(losses)
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end]
    third = (end - start) / 3
    return float(lrs[min(n - 1, max(0, start + int(third) + int(third / 2)))])


# A stage's range test: short, and from a rate low enough that the loss cannot fall yet.
STAGE_SWEEP = {"start": 1e-6, "end": 1.0, "steps": 80, "stop_factor": 4.0, "smooth": 0.9}


def stage_lr(train_model, factory, loss, x, y, options, augment=None, fallback: float = 1e-3):
    """The valley-rule learning rate for one stage, from a short range test on its own
    trainable layers (`STAGE_SWEEP`: 80 steps from 1e-6 to 1).

    The model's weights, flags and regularizers come back afterwards. Returns `fallback`
    when the loss never fell (fewer than 5 finite steps).
    """
    restorer = WeightRestorer(train_model)
    try:
        optimizer = factory(STAGE_SWEEP["start"])
        train_model.compile(optimizer=optimizer, loss=loss)
        lrs, _, smoothed, _ = sweep(
            train_model,
            optimizer,
            x,
            y,
            options,
            STAGE_SWEEP["start"],
            STAGE_SWEEP["end"],
            STAGE_SWEEP["steps"],
            STAGE_SWEEP["stop_factor"],
            STAGE_SWEEP["smooth"],
            augment=augment,
        )
    finally:
        restorer.restore()
    if len(smoothed) < 5:
        return fallback
    return valley(lrs, smoothed)
