"""The learning-rate range test (Smith 2015; fastai's `lr_find`): grow the learning rate
exponentially, one training step at a time, and watch where the loss starts to drop and where
it blows up.

The sweep trains the model exactly as `reuse finetune` would train it — same cut, new head,
frozen layers, optimizer, regularization, and from the feature cache when one is given — so
the rate it suggests is a rate for that run. The model's weights (and layer flags) are put
back afterwards: a sweep is a measurement, not training.

    result = lr_find(base, dataset, options=FinetuneOptions(optimizer="adam"))
    result.suggestion, result.rule     # 2.1e-3, "valley"
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from reuse.core.errors import TrainingDiverged, UsageError
from reuse.training.finetune import prepare

RULES = ("valley", "steepest")


@dataclass
class LrFindResult:
    """What a sweep measured and what it suggests.

    Attributes:
        lrs: the learning rate of each step taken.
        losses: the raw training loss of each step.
        smoothed: the bias-corrected exponential moving average of `losses`.
        suggestion: the suggested learning rate (by `rule`).
        rule: the rule that picked `suggestion` ("valley" or "steepest").
        suggestions: every rule's pick, {rule: lr}.
        stopped_early: True when the loss exceeded stop_factor x its best before `end`.
        cut: the last reused layer; `tap`: the cached tap the sweep trained from (None: raw inputs).
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    rule: str
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    cut: str | None = None
    tap: str | None = None
    best_lr: float | None = None  # where the smoothed loss was lowest

    def to_dict(self) -> dict:
        return asdict(self)


class _Restorer:
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


def lr_find(
    model,
    data=None,
    *,
    features=None,
    options=None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    stop_factor: float = 4.0,
    smooth: float = 0.98,
    rule: str = "valley",
) -> LrFindResult:
    """Sweep the learning rate from `start` to `end` over `steps` steps and suggest one.

    Example:
        >>> result = lr_find(load_model("base.keras"), load_data("train.npz"), steps=100)
        >>> finetune(base, data, lr=result.suggestion)

    Args:
        model: the Keras model to reuse (its weights are unchanged afterwards).
        data: a Dataset or `(x, y)` arrays; optional when `features` is given.
        features: a feature cache made from `model`; the sweep trains from it.
        options: a `FinetuneOptions` (cut, head, optimizer, regularization, batch size, seed).
        start, end: the first and last learning rate (exponential spacing).
        steps: the number of training steps (one batch each).
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        smooth: the exponential-moving-average factor of the smoothed loss, in [0, 1).
        rule: which suggestion to return: "valley" (fastai's default) or "steepest".

    Returns:
        LrFindResult with the curve and the suggestion.

    Raises:
        UsageError: a bad range or factor (named, with the value received).
        TrainingDiverged: the loss blew up before the sweep could see it fall.
    """
    import keras

    from reuse.training import optimizers
    from reuse.training.options import FinetuneOptions
    from reuse.training.transfer import apply_trainable, regularize_reused

    _check_arguments(start, end, steps, stop_factor, smooth, rule)
    options = options or FinetuneOptions()
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    restorer = _Restorer(model)
    try:
        run = prepare(model, data, features=features, options=options)
        transfer = run.transfer
        apply_trainable(transfer, run.trainable, train_bn=options.train_bn)
        regularize_reused(transfer, run.trainable, options)
        train_model = run.train_model()
        x, y = run.inputs.train(run.tap)
        factory = optimizers.optimizer_factory(
            options.optimizer, clipnorm=options.clip_norm, clipvalue=options.clip_value
        )
        optimizer = factory(start)
        train_model.compile(optimizer=optimizer, loss=transfer.loss)
        lrs, losses, smoothed, stopped = _sweep(
            train_model, optimizer, x, y, options, start, end, steps, stop_factor, smooth
        )
    finally:
        restorer.restore()
    if len(smoothed) < 5:
        raise TrainingDiverged(
            f"the loss blew up within {len(smoothed)} steps of start={start:g}, before it could fall",
            "lower --start (e.g. --start 1e-9) or check the inputs for huge values",
        )
    picks = {"valley": valley(lrs, smoothed), "steepest": steepest(lrs, smoothed)}
    best = int(np.argmin(smoothed))
    return LrFindResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        suggestion=picks[rule],
        rule=rule,
        suggestions=picks,
        stopped_early=stopped,
        cut=transfer.cut,
        tap=run.tap,
        best_lr=lrs[best],
    )


def _check_arguments(start, end, steps, stop_factor, smooth, rule) -> None:
    if not (start > 0 and math.isfinite(start)):
        raise UsageError(f"`start` must be > 0. Received: start={start}", "e.g. --start 1e-7")
    if not (end > start and math.isfinite(end)):
        raise UsageError(
            f"`end` must be greater than start={start:g}. Received: end={end}", "e.g. --end 10"
        )
    if steps < 5:
        raise UsageError(f"`steps` must be >= 5. Received: steps={steps}", "e.g. --steps 100")
    if not stop_factor > 1:
        raise UsageError(
            f"`stop_factor` must be > 1. Received: stop_factor={stop_factor}",
            "e.g. --stop-factor 4",
        )
    if not 0 <= smooth < 1:
        raise UsageError(
            f"`smooth` must be in [0, 1). Received: smooth={smooth}", "e.g. --smooth 0.98"
        )
    if rule not in RULES:
        raise UsageError(
            f"`rule` must be one of {', '.join(RULES)}. Received: rule={rule!r}",
            "use --rule valley or steepest",
        )


def _sweep(train_model, optimizer, x, y, options, start, end, steps, stop_factor, smooth):
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
        loss = float(np.asarray(train_model.train_on_batch(x[rows], y[rows])).reshape(-1)[0])
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
