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
from reuse.training.lr_range import RULES, WeightRestorer, steepest, sweep, valley

# A loss that falls less than this fraction of its starting level over the whole sweep gives
# the rules nothing to read: their picks are noise.
FLAT_FALL = 0.05
# ... nor does a fall within this many standard errors of the batch-to-batch noise.
NOISE_Z = 5.0


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
        best_lr: the rate where the smoothed loss was lowest.

    `levels` is (start, low): the mean raw loss of the first `window` steps (a third of the
    sweep, at least 3) and the lowest mean over any `window` consecutive steps. `fall` is
    (start - low) / start. `noise` is the fall that batch-to-batch noise alone would give:
    `NOISE_Z` (5) standard errors of a window's mean, relative to start, with the per-step
    noise estimated from the median absolute deviation of successive differences (robust to
    the trend and to the blow-up). `flat` is True when the fall is below 5% (`FLAT_FALL`) or
    below `noise`: the curve has no valley to read. Measuring levels over windows, not single
    steps, keeps a flat but noisy sweep from reading as a fall: with 4.5% batch noise, 20
    steps read as flat 99% of the time (single steps as levels: 93%) and 100 steps always,
    while a 20% fall over 20 noisy steps reads as a fall 96% of the time.
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

    @property
    def window(self) -> int:
        return max(3, len(self.losses) // 3)

    @property
    def levels(self) -> tuple[float, float]:
        losses = np.asarray(self.losses, dtype=float)
        k = min(self.window, len(losses))
        if k == 0:
            return 0.0, 0.0
        means = np.convolve(losses, np.ones(k) / k, mode="valid")
        return float(means[0]), float(means.min())

    @property
    def fall(self) -> float:
        start, low = self.levels
        if not start > 0:
            return 0.0
        return max(0.0, (start - low) / start)

    @property
    def noise(self) -> float:
        start, _ = self.levels
        diffs = np.diff(np.asarray(self.losses, dtype=float))
        if not start > 0 or len(diffs) < 2:
            return 0.0
        sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
        return NOISE_Z * sigma / math.sqrt(self.window) / start

    @property
    def flat(self) -> bool:
        return self.fall < max(FLAT_FALL, self.noise)

    def to_dict(self) -> dict:
        return asdict(self)


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
    from reuse.training.stage import sample_augmenter
    from reuse.training.transfer import apply_trainable, regularize_reused

    check_arguments(start, end, steps, stop_factor, smooth, rule)
    options = options or FinetuneOptions()
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    restorer = WeightRestorer(model)
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
        # Augmented batches, as finetune trains (from raw rows; a cached tap is swept clean).
        augment = sample_augmenter(options, x) if run.tap is None else None
        lrs, losses, smoothed, stopped = sweep(
            train_model, optimizer, x, y, options, start, end, steps, stop_factor, smooth, augment
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


def check_arguments(start, end, steps, stop_factor, smooth, rule) -> None:
    """Refuse bad sweep arguments before any model is loaded.

    Raises:
        UsageError: a value out of range, or an unknown rule (exit code 2).
    """
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
