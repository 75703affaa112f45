"""Fine-tuning: keep the reused layers, put a new head on top, train in stages.

A run is a list of stages. Each stage names the reused layers it trains, gets a fresh compile
with a new optimizer (Keras ignores `trainable` changes otherwise, and an optimizer built for
other variables fails), its own early stopping, and trains from the deepest cached tap below
its lowest trainable layer — or from the raw inputs when no tap fits. `finetune` runs one stage
(`--unfreeze none|all`); `reuse.training.gradual` runs many with the same machinery.

The model that is trained from the cache shares its layer objects with the whole model, so
the whole model is what gets saved, and its predictions on raw inputs equal the cached path's.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reuse.core import report
from reuse.core.errors import CacheMismatch, DataError, TrainingDiverged, UsageError

UNFREEZE_MODES = ("none", "all", "gradual")


@dataclass
class FinetuneOptions:
    """Every knob of a fine-tuning run (the CLI flags map one to one)."""

    cut: str | None = None
    head: str = "auto"
    loss: str | None = None
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str | None = None
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0
    max_norm: float | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    label_smoothing: float = 0.0
    early_stopping: int | None = None
    epochs: int | None = None  # None: 10 per stage for gradual, else 100 with early stopping
    batch_size: int = 32
    seed: int | None = None
    val_split: float | None = None
    unfreeze: str = "none"
    train_bn: bool = False
    # gradual unfreezing (reuse.training.gradual)
    # Two layers per stage: each stage also divides the lr by stage_lr_div, so one layer per
    # stage leaves the lowest of n reused layers training at lr / 2^n (1/32 for MNIST's five),
    # where it barely moves. On the MNIST 5-9 task (bench/bench_mnist_transfer.py, 3 seeds) step
    # 2 beats the hand-written freeze-then-unfreeze Keras script on every seed; step 1 does not.
    unfreeze_step: int = 2
    stage_lr_div: float = 2.0
    max_unfreeze: int | None = None
    layer_lr_decay: float | None = None
    reuse_depth: str = "keep"
    stage_epochs: int | None = None
    tensorboard: str | None = None

    def resolve_defaults(self) -> None:
        """Fill the defaults that depend on the mode (tested on the MNIST 5-9 exercise).

        Gradual: 10 epochs per stage with early stopping (patience 3), each stage keeping its
        best epoch. Otherwise: up to 100 epochs with early stopping (patience 5) when the epoch
        count was left open — a head on a few hundred rows needs more than 10 epochs. An
        explicit --epochs without --early-stopping trains exactly that many epochs.
        """
        gradual = self.unfreeze == "gradual"
        if self.epochs is None:
            self.epochs = 10 if gradual else 100
            if self.early_stopping is None:
                self.early_stopping = 3 if gradual else 5
        if gradual and self.early_stopping is None:
            self.early_stopping = 3

    def check(self) -> None:
        """Refuse bad values where they enter, naming the option and echoing the value."""
        self.resolve_defaults()
        if self.unfreeze not in UNFREEZE_MODES:
            raise UsageError(
                f"--unfreeze must be one of {', '.join(UNFREEZE_MODES)}. Received: {self.unfreeze!r}",
                "use --unfreeze none, all or gradual",
            )
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "unfreeze_step": self.unfreeze_step,
        }
        for name, value in positive.items():
            if value is None or value < 1:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be >= 1. Received: {value}",
                    "give a positive number",
                )
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be > 0. Received: {self.lr}", "try --lr 1e-3")
        for name in ("l1", "l2", "dropout", "label_smoothing"):
            value = getattr(self, name)
            if value < 0 or (name in ("dropout", "label_smoothing") and value >= 1):
                raise UsageError(
                    f"--{name.replace('_', '-')} must be in [0, 1). Received: {value}"
                    if name in ("dropout", "label_smoothing")
                    else f"--{name} must be >= 0. Received: {value}",
                    "give a small non-negative number",
                )
        if self.stage_lr_div <= 0:
            raise UsageError(
                f"--stage-lr-div must be > 0. Received: {self.stage_lr_div}",
                "e.g. --stage-lr-div 2",
            )
        if self.layer_lr_decay is not None and self.layer_lr_decay <= 0:
            raise UsageError(
                f"--layer-lr-decay must be > 0. Received: {self.layer_lr_decay}",
                "e.g. --layer-lr-decay 2.6",
            )
        if self.early_stopping is not None and self.early_stopping < 0:
            raise UsageError(
                f"--early-stopping must be >= 0. Received: {self.early_stopping}",
                "give a patience in epochs",
            )


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


@dataclass
class StagePlan:
    index: int
    trainable: list[str]  # reused leaf paths trained in this stage (head always trains)
    lr: float
    tap: str | None = None  # the cached tap it trains from; None = raw inputs
    epochs: int | None = None
    lr_scales: dict = field(default_factory=dict)  # layer path -> lr multiplier (discriminative)


@dataclass
class StageResult:
    index: int
    trainable: list[str]
    tap: str | None
    epochs: int
    best_metric: float | None
    monitor: str
    lr: float
    seconds: float
    diverged: bool = False
    kept: bool = True
    cut: str | None = None

    def row(self) -> dict:
        return {
            "stage": self.index,
            "cut": self.cut,
            "trainable": ", ".join(self.trainable) if self.trainable else "head only",
            "tap": self.tap or "input",
            "epochs": self.epochs,
            "best": self.best_metric,
            "monitor": self.monitor,
            "lr": self.lr,
            "seconds": round(self.seconds, 2),
            "kept": self.kept,
        }


@dataclass
class FinetuneResult:
    model: object
    transfer: TransferModel
    history: list[dict]
    stages: list[StageResult]
    metrics: dict
    used_cache: bool


# ----------------------------------------------------------------------------- building


def default_cut(model) -> str:
    """The reused layers end below the output layer by default."""
    from reuse.surgery.layer_tree import leaves

    names = [e.path for e in leaves(model) if type(e.layer).__name__ != "InputLayer"]
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


# ------------------------------------------------------------------------- trainability


def apply_trainable(
    transfer: TransferModel, trainable: list[str], *, train_bn: bool = False
) -> None:
    """Make exactly `trainable` (reused leaf paths) and the head trainable; freeze the rest.

    BatchNormalization layers among the reused ones stay frozen (inference mode) unless
    `train_bn`: with small data, their batch statistics would be noisier than the stored ones.
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

    set_trainable(transfer.model, {e.path: flag(e) for e in leaves(transfer.model)})


# ------------------------------------------------------------------------------ data


class TrainingInputs:
    """Where each stage's inputs come from: a feature cache's taps, or the raw data.

    Validation rows for a cached tap are computed once per tap through the frozen part (they
    are few); training rows come from the cache, so the layers below the tap never run.
    """

    def __init__(
        self,
        transfer: TransferModel,
        *,
        x=None,
        y=None,
        cache=None,
        val=None,
        val_split=None,
        seed=None,
    ):
        self.transfer = transfer
        self.cache = cache
        self.y = y if cache is None else cache.labels
        self.x = x
        self._features: dict[str, np.ndarray] = {}
        self._val_features: dict[str, np.ndarray] = {}
        self.val_x, self.val_y = val if val is not None else (None, None)
        self.train_rows = self.val_rows = None
        if val is None and val_split:
            self.hold_out(val_split, seed)

    def hold_out(self, fraction: float, seed=None) -> None:
        """Validate on a seeded `fraction` of the training rows (when no --val was given)."""
        perm = np.random.default_rng(seed).permutation(len(self.y))
        n_val = max(1, int(round(fraction * len(self.y))))
        if n_val >= len(self.y):
            raise DataError(
                f"{len(self.y)} training row(s): holding out {n_val} for validation leaves none to train on",
                "pass validation data with --val, or more training rows",
            )
        self.val_rows, self.train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    @property
    def taps(self) -> list[str]:
        return list(self.cache.taps) if self.cache is not None else []

    def has_validation(self) -> bool:
        return self.val_x is not None or self.val_rows is not None

    def train(self, tap: str | None):
        x = self._inputs(tap)
        y = self.y
        if self.train_rows is not None:
            return x[self.train_rows], y[self.train_rows]
        return x, y

    def validation(self, tap: str | None):
        if self.val_rows is not None:
            return self._inputs(tap)[self.val_rows], self.y[self.val_rows]
        if self.val_x is None:
            return None
        if tap is None:
            return self.val_x, self.val_y
        if tap not in self._val_features:
            from reuse.surgery import cuts

            bottom = cuts.bottom_model(self.transfer.model, [tap])
            # Eager calls in batches: a compiled predict on each new tap model would retrace.
            self._val_features[tap] = np.concatenate(
                [
                    np.asarray(bottom(self.val_x[i : i + 256], training=False))
                    for i in range(0, len(self.val_x), 256)
                ]
            )
        return self._val_features[tap], self.val_y

    def _inputs(self, tap: str | None):
        if tap is None:
            if self.x is None:
                raise UsageError(
                    "this stage trains layers below every cached tap, and no raw --data was given",
                    "pass --data too, or cache a lower tap with `reuse cache-features --at`",
                )
            return self.x
        if tap not in self._features:
            self._features[tap] = self.cache.array(tap)
        return self._features[tap]


def deepest_tap_below(transfer: TransferModel, trainable: list[str], taps: list[str]) -> str | None:
    """The highest cached tap that lies below every trainable reused layer (None: raw input)."""
    order = {name: i for i, name in enumerate(transfer.reused)}
    lowest = min((order[t] for t in trainable if t in order), default=len(transfer.reused))
    best = None
    for tap in taps:
        if tap in order and order[tap] < lowest and (best is None or order[tap] > order[best]):
            best = tap
    return best


# ----------------------------------------------------------------------------- stages


@dataclass
class StageProgress:
    """Where a stage stands, for checkpoints and resume."""

    epochs_done: int = 0
    best: float | None = None
    wait: int = 0
    best_weights: list | None = None
    optimizer_state: list | None = None


def run_stage(
    transfer: TransferModel,
    plan: StagePlan,
    inputs: TrainingInputs,
    options: FinetuneOptions,
    history: list[dict],
    *,
    callbacks: list | None = None,
    initial_epoch: int = 0,
    progress: StageProgress | None = None,
    on_epoch=None,
) -> StageResult:
    """Train one stage: set trainability, compile afresh, fit, keep the best weights.

    `progress` resumes a stage part-way (epochs done, early-stopping state, optimizer state);
    `on_epoch(model_to_fit, optimizers, progress, global_epoch)` runs after each epoch
    (checkpoints).
    """
    import keras

    from reuse.surgery import cuts
    from reuse.training import optimizers, schedules
    from reuse.training.loop import fit_arrays

    started = time.perf_counter()
    progress = progress or StageProgress()
    apply_trainable(transfer, plan.trainable, train_bn=options.train_bn)
    train_model = transfer.model if plan.tap is None else cuts.top_model(transfer.model, plan.tap)
    x, y = inputs.train(plan.tap)
    validation = inputs.validation(plan.tap)
    epochs = plan.epochs or options.epochs
    steps_per_epoch = max(1, math.ceil(len(y) / options.batch_size))
    lr_value, schedule_callbacks = schedules.parse_schedule(
        options.schedule or "constant",
        lr=plan.lr,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation=validation is not None,
    )
    _regularize_reused(transfer, plan.trainable, options)
    factory = optimizers.optimizer_factory(
        options.optimizer, clipnorm=options.clip_norm, clipvalue=options.clip_value
    )
    if plan.lr_scales and any(s != 1.0 for s in plan.lr_scales.values()):
        from reuse.training.discriminative import GroupedOptimizerModel

        model_to_fit = GroupedOptimizerModel(train_model, factory, lr_value, plan.lr_scales)
        model_to_fit.compile(
            loss=transfer.loss,
            metrics=list(transfer.metrics),
        )
        stage_optimizers = [opt for _, opt, _ in model_to_fit.groups]
    else:
        model_to_fit = train_model
        model_to_fit.compile(
            optimizer=factory(lr_value),
            loss=transfer.loss,
            metrics=list(transfer.metrics),
        )
        model_to_fit.optimizer.build(model_to_fit.trainable_variables)
        stage_optimizers = [model_to_fit.optimizer]
    if progress.optimizer_state is not None:
        variables = [v for opt in stage_optimizers for v in opt.variables]
        if len(variables) != len(progress.optimizer_state):
            raise UsageError(
                "the checkpoint's optimizer state does not fit this stage",
                "start afresh in another --checkpoint-dir",
            )
        for var, value in zip(variables, progress.optimizer_state, strict=True):
            var.assign(value)

    monitor = "val_loss" if validation is not None else "loss"
    recorder = _HistoryRecorder(plan, history, model_to_fit, started)
    guard = _DivergenceGuard()
    stopper = _StageEarlyStopping(monitor, options.early_stopping, progress)
    cbs = [guard, recorder, stopper, *schedule_callbacks, *(callbacks or [])]
    if on_epoch is not None:
        cbs.append(
            _EpochHook(lambda epoch: on_epoch(model_to_fit, stage_optimizers, progress, epoch + 1))
        )
    delay = float(os.environ.get("REUSE_TEST_EPOCH_DELAY", "0") or 0)
    if delay:  # lets the resume test kill a run in the middle of a stage
        cbs.append(_EpochHook(lambda epoch: time.sleep(delay)))
    if options.tensorboard:
        _require_tensorboard()
        cbs.append(
            keras.callbacks.TensorBoard(
                log_dir=str(Path(options.tensorboard) / f"stage{plan.index}")
            )
        )
    remaining = epochs - progress.epochs_done
    if remaining > 0 and not stopper.should_stop_now():
        fit_arrays(
            model_to_fit,
            x,
            y,
            batch_size=options.batch_size,
            epochs=initial_epoch + remaining,
            initial_epoch=initial_epoch,
            validation_data=validation,
            callbacks=cbs,
            seed=options.seed,
        )
    if guard.diverged:
        guard.restore()
    if options.early_stopping is not None and progress.best_weights is not None:
        model_to_fit.set_weights(progress.best_weights)
    return StageResult(
        index=plan.index,
        trainable=list(plan.trainable),
        tap=plan.tap,
        epochs=progress.epochs_done,
        best_metric=progress.best,
        monitor=monitor,
        lr=float(plan.lr),
        seconds=time.perf_counter() - started,
        diverged=guard.diverged,
        cut=transfer.cut,
    )


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UsageError(
            "--tensorboard needs the tensorboard package",
            "pip install tensorboard (or keras-reuse[tensorboard])",
        ) from None


def _regularize_reused(
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
        if kernel is None:
            continue
        if options.l1 or options.l2:
            kernel.regularizer = heads.kernel_regularizer(options.l1, options.l2)
        if options.max_norm:
            kernel.constraint = heads.kernel_constraint(options.max_norm)


def _learning_rate_now(model) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class _HistoryRecorder:  # built lazily on a keras Callback base (see __new__)
    def __new__(cls, *args, **kwargs):
        base = _keras_callback_base()

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
                row = {
                    "stage": self.plan.index,
                    "epoch": len(self.rows) + 1,
                    "stage_epoch": epoch + 1,
                }
                row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
                lr = (logs or {}).get("learning_rate")
                row["lr"] = float(lr) if lr is not None else _learning_rate_now(self.fit_model)
                row["tap"] = self.plan.tap or "input"
                row["seconds"] = round(time.perf_counter() - self.started, 3)
                self.rows.append(row)

        return Recorder(*args, **kwargs)


class _StageEarlyStopping:
    """Tracks the best epoch of a stage; with a patience, stops and keeps the best weights.

    Unlike keras.callbacks.EarlyStopping its state lives in a StageProgress, so a resumed stage
    continues counting where the checkpoint left off.
    """

    def __new__(cls, monitor, patience, progress):
        base = _keras_callback_base()

        class Stopper(base):
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
                        progress.best_weights = [np.array(w) for w in self.model.get_weights()]
                else:
                    progress.wait += 1
                if self.should_stop_now():
                    self.model.stop_training = True

        return Stopper()


class _EpochHook:
    def __new__(cls, func):
        base = _keras_callback_base()

        class Hook(base):
            def on_epoch_end(self, epoch, logs=None):
                func(epoch)

        return Hook()


class _DivergenceGuard:
    """Stops a stage at the first NaN/Inf loss and can restore the last good epoch's weights."""

    def __new__(cls, *args, **kwargs):
        base = _keras_callback_base()

        class Guard(base):
            def __init__(self):
                super().__init__()
                self.diverged = False
                self.good = None

            def on_train_begin(self, logs=None):
                self.good = [np.array(w) for w in self.model.get_weights()]

            def on_epoch_end(self, epoch, logs=None):
                # fit_arrays ends an epoch at the first batch whose loss is not finite.
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.diverged = True
                    self.model.stop_training = True
                if not self.diverged:
                    self.good = [np.array(w) for w in self.model.get_weights()]

            def restore(self):
                if self.good is not None:
                    self.model.set_weights(self.good)

        return Guard()


# ------------------------------------------------------------------------------ finetune


def resolve_cache(path, transfer: TransferModel, data=None):
    """Open a feature cache for `transfer`, refusing one made from another model or other data."""
    from reuse.cache import feature_cache

    cache = feature_cache.open_cache(path, model=transfer.model)
    usable = [t for t in cache.taps if t in transfer.reused]
    if not usable:
        raise CacheMismatch(
            f"the cache {path} holds taps {', '.join(cache.taps)}, none of which is a reused layer of this model "
            f"(the reused layers end at {transfer.cut})",
            f"rebuild it: {cache.rebuild_command()}",
        )
    if data is not None and hasattr(data, "identity"):
        cache.check_data(data)
    return cache


def finetune(
    model,
    data=None,
    *,
    val=None,
    features=None,
    options: FinetuneOptions | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    **kwargs,
) -> FinetuneResult:
    """Reuse the lower layers of `model`, add a new head, and train it.

    Example:
        >>> result = finetune(reuse.load_model("base.keras"), reuse.load_data("train.npz"),
        ...                   head="auto", optimizer="adam", epochs=5)
        >>> result.model.save("tuned.keras")

    Args:
        model: the Keras model to reuse.
        data: a `reuse.data.dataset.Dataset` (or `(x, y)` arrays); optional when `features` is given.
        val: validation data, a Dataset or `(x, y)`.
        features: path of a feature cache made from `model` (trains from it).
        options: a FinetuneOptions; keyword arguments override its fields.
        checkpoint_dir: write a checkpoint after every epoch into this folder.
        resume: continue the run checkpointed in `checkpoint_dir`.

    Returns:
        FinetuneResult with the whole trained model, the history and the stage table.

    Raises:
        CacheMismatch: the cache was made from another model or other data.
        UsageError: contradictory options (e.g. a cache with --unfreeze all).
        TrainingDiverged: the loss became NaN or Inf before anything useful was learned.
    """
    import keras

    options = FinetuneOptions(**{**asdict(options or FinetuneOptions()), **kwargs})
    options.check()
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    if features is not None and options.unfreeze == "all":
        raise UsageError(
            "--features cannot be used with --unfreeze all: the cached layers would be trained",
            "drop --features (or --no-cache), or use --unfreeze none or gradual",
        )

    run = prepare(model, data, val=val, features=features, options=options)
    transfer, inputs, cache = run.transfer, run.inputs, run.cache
    x, y, val_arrays = (
        inputs.x,
        inputs.y,
        (inputs.val_x, inputs.val_y) if inputs.val_x is not None else None,
    )
    if (
        cache is not None
        and x is None
        and val_arrays is None
        and not options.val_split
        and options.early_stopping is not None
    ):
        report.info("note: no validation data; early stopping watches the training loss")

    from reuse.training import gradual

    history: list[dict] = []
    if options.unfreeze == "gradual":
        if options.reuse_depth.startswith("search"):
            transfer, inputs, stages, history = _search_reuse_depth(
                model, y, x, cache, val_arrays, options
            )
            prior = [s for s in stages if s.cut == transfer.cut]
            plans = gradual.plan_stages(transfer, options, inputs.taps)[1:]
            later = gradual.run(
                transfer,
                inputs,
                options,
                history,
                plans=plans,
                prior=prior,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
            )
            stages = stages + later[len(prior) :]
        else:
            stages = gradual.run(
                transfer, inputs, options, history, checkpoint_dir=checkpoint_dir, resume=resume
            )
    else:
        trainable, tap = run.trainable, run.tap
        if trainable and cache is not None:
            report.info(
                f"note: {len(trainable)} reused layer(s) are trainable in the model; they train from tap {tap}"
            )
        plan = StagePlan(0, trainable, options.lr or default_lr(options.optimizer), tap)
        stages = gradual.run(
            transfer,
            inputs,
            options,
            history,
            plans=[plan],
            judge=False,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
    if stages and stages[-1].diverged and not history_has_finite(history):
        raise TrainingDiverged(
            "the loss became NaN or Inf in the first epoch",
            "lower --lr (try 10x lower), check the inputs for huge values, or use another initialization",
        )
    if options.unfreeze != "gradual" and stages and stages[-1].diverged:
        report.warn(
            "the loss became NaN or Inf; kept the weights of the last good epoch — try a lower --lr"
        )
    metrics = _final_metrics(history, stages, restored=options.early_stopping is not None)
    return FinetuneResult(
        model=transfer.model,
        transfer=transfer,
        history=history,
        stages=stages,
        metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
        used_cache=cache is not None,
    )


def _search_reuse_depth(base, y, x, cache, val_arrays, options: FinetuneOptions):
    """Try the head on the reused layers minus the top 0..K layers; keep the best by validation.

    The classic advice for small data: if the head does poorly, drop the top reused layer or
    two (their features are the most specific to the old task) and try again.
    """
    from dataclasses import replace

    from reuse.surgery import cuts
    from reuse.training import gradual

    text = options.reuse_depth
    try:
        k = int(text.split(":", 1)[1]) if ":" in text else 2
    except ValueError:
        raise UsageError(
            f"--reuse-depth must be keep or search[:K]. Received: {text!r}",
            "e.g. --reuse-depth search:2",
        ) from None
    first = build_transfer_model(base, y, options)
    valid = set(cuts.valid_cut_points(base))
    candidates = [first.cut] + [name for name in reversed(first.reused[:-1]) if name in valid][:k]
    tried = []
    for depth, cut in enumerate(candidates):
        transfer = first if depth == 0 else build_transfer_model(base, y, replace(options, cut=cut))
        inputs = TrainingInputs(
            transfer,
            x=x,
            y=y,
            cache=cache,
            val=val_arrays,
            val_split=options.val_split or (None if val_arrays is not None else 0.2),
            seed=options.seed,
        )
        tap = deepest_tap_below(transfer, [], inputs.taps)
        if cache is not None and tap is None and x is None:
            report.info(f"reuse-depth search: no cached tap at or below {cut}; skipped")
            continue
        history: list[dict] = []
        plan = StagePlan(
            0, [], options.lr or default_lr(options.optimizer), tap, options.stage_epochs
        )
        stage = gradual.run(transfer, inputs, options, history, plans=[plan])
        tried.append(
            (stage[0].best_metric if stage else None, depth, transfer, inputs, stage, history)
        )
        report.info(
            f"reuse-depth search: cut {cut} (top {depth} reused layer(s) dropped): best {stage[0].monitor if stage else ''} "
            f"{stage[0].best_metric if stage and stage[0].best_metric is not None else float('nan'):.4f}"
        )
    scored = [t for t in tried if t[0] is not None]
    if not scored:
        raise TrainingDiverged(
            "no reuse depth trained to a finite loss", "lower --lr, or check the inputs"
        )
    best = min(scored, key=lambda t: t[0])
    all_stages = []
    for _, _depth, transfer, _, stage, _ in tried:
        for s in stage:
            s.kept = transfer is best[2]
        all_stages.extend(stage)
    report.info(f"reuse-depth search: keeping cut {best[2].cut}")
    return best[2], best[3], all_stages, best[5]


@dataclass
class PreparedRun:
    """A transfer model set up as the first stage of `finetune` trains it."""

    transfer: TransferModel
    inputs: TrainingInputs
    trainable: list[str]
    tap: str | None
    cache: object = None

    def train_model(self):
        """The model the stage fits: the whole model, or the part above the cached tap."""
        from reuse.surgery import cuts

        return (
            self.transfer.model
            if self.tap is None
            else cuts.top_model(self.transfer.model, self.tap)
        )


def prepare(model, data=None, *, val=None, features=None, options: FinetuneOptions) -> PreparedRun:
    """Build the transfer model, its inputs (raw or cached), and the first stage's trainable
    layers and tap — the setup `finetune`, `lr_find` and `check` share.

    Example:
        >>> run = prepare(base, dataset, options=FinetuneOptions())
        >>> run.train_model().fit(*run.inputs.train(run.tap))

    Raises:
        DataError: no labels. CacheMismatch: a cache made from another model or data.
        UsageError: a cache whose taps lie above layers the first stage trains.
    """
    options.check()
    x, y, _ = _arrays(data)
    if features is not None:
        from reuse.cache import feature_cache

        with feature_cache.open_cache(features) as peek:
            labels = peek.labels
        y = labels if y is None else y
    if y is None:
        raise DataError(
            "no labels to train on", "pass --data with labels, or a feature cache that stores them"
        )
    transfer = build_transfer_model(model, y, options)
    if x is not None:
        x = fit_input_shape(x, transfer.model, source=getattr(data, "path", "--data"))
    val_arrays = None
    if val is not None:
        vx, vy, _ = _arrays(val)
        val_arrays = (fit_input_shape(vx, transfer.model, source=getattr(val, "path", "--val")), vy)
    cache = resolve_cache(features, transfer, data) if features is not None else None
    inputs = TrainingInputs(
        transfer,
        x=x,
        y=y,
        cache=cache,
        val=val_arrays,
        val_split=options.val_split,
        seed=options.seed,
    )
    if options.unfreeze == "all":
        trainable = list(transfer.reused)
    elif options.unfreeze == "gradual":
        trainable = []
    else:
        trainable = [n for n in transfer.reused if _layer(transfer, n).trainable]
    tap = deepest_tap_below(transfer, trainable, inputs.taps) if cache is not None else None
    if cache is not None and tap is None:
        raise UsageError(
            f"the cache's taps ({', '.join(inputs.taps)}) lie above reused layers that this run trains "
            f"({', '.join(trainable[:3])}{', ...' if len(trainable) > 3 else ''}), so it cannot be used",
            "freeze those layers first (reuse freeze --upto TAP), cache a lower tap, or drop --features",
        )
    return PreparedRun(transfer, inputs, trainable, tap, cache)


def _final_metrics(history: list[dict], stages: list[StageResult], *, restored: bool) -> dict:
    """The metrics of the epoch whose weights the model ends with: the best epoch of the last
    kept stage (early stopping and stage judging restore those weights), else the last epoch."""
    kept = [s for s in stages if s.kept]
    if not history:
        return {}
    if not kept or not restored:
        return history[-1]
    stage = kept[-1]
    rows = [
        r
        for r in history
        if r.get("stage") == stage.index and math.isfinite(r.get(stage.monitor, math.nan))
    ]
    return min(rows, key=lambda r: r[stage.monitor]) if rows else history[-1]


def history_has_finite(history: list[dict]) -> bool:
    return any(math.isfinite(row.get("loss", float("nan"))) for row in history)


def default_lr(optimizer_text: str) -> float:
    name = optimizer_text.split(":", 1)[0].strip().lower()
    return {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "ftrl": 0.05}.get(
        name, 0.001
    )


def _layer(transfer: TransferModel, path: str):
    from reuse.surgery.layer_tree import find

    return find(transfer.model, path).layer


def _arrays(data):
    """(x, y, identity) from a Dataset, an (x, y) pair, or None."""
    if data is None:
        return None, None, None
    if isinstance(data, tuple):
        x, y = data
        return np.asarray(x, dtype=np.float32), None if y is None else np.asarray(y), None
    x, y = data.arrays()
    return x, y, getattr(data, "identity", None)


def fit_input_shape(x: np.ndarray, model, source: str = "data") -> np.ndarray:
    """Reshape inputs to the model's input when only a flatten or a channel axis differs."""
    want = tuple(int(d) for d in model.inputs[0].shape[1:] if d is not None)
    have = tuple(x.shape[1:])
    if have == want or len(want) != len(model.inputs[0].shape[1:]):
        return x
    if int(np.prod(have)) == int(np.prod(want)):
        return x.reshape((len(x), *want))
    raise DataError(
        f"{source}: input shape {have} does not fit the model's input {want}",
        "pass data made for this model, or a model with a matching input",
    )


def write_history(history: list[dict], path: str | Path) -> tuple[Path, Path]:
    """Write the history as CSV and JSON side by side (`path` without extension + .csv/.json)."""
    import csv

    from reuse.core.atomic import atomic_path

    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".csv", ".json") else base
    csv_path, json_path = Path(f"{base}.csv"), Path(f"{base}.json")
    columns: list[str] = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
    with atomic_path(json_path) as tmp:
        Path(tmp).write_text(json.dumps(history, indent=1) + "\n")
    return csv_path, json_path
