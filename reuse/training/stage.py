"""One stage of fine-tuning: set trainability, compile afresh, train, keep the best epoch.

A stage (`StagePlan`) names the reused layers it trains, its learning rate and the cached tap it
trains from. Each stage compiles with a new optimizer (Keras ignores `trainable` changes
otherwise, and an optimizer built for other variables fails), trains with `fit_arrays`, and
returns a `StageResult` (one row of the stage table).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import UsageError
from reuse.training.callbacks import (
    DivergenceGuard,
    EpochHook,
    HistoryRecorder,
    StageEarlyStopping,
)
from reuse.training.inputs import TrainingInputs
from reuse.training.options import FinetuneOptions
from reuse.training.transfer import TransferModel, apply_trainable, regularize_reused


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
    params: int | None = None  # parameters the stage trained (adapters + head with LoRA)

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
            "params": self.params,
        }


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
    from reuse.training.precision import loss_scaled

    started = time.perf_counter()
    progress = progress or StageProgress()
    # The stage table lists what trains: no Dropout, no BatchNormalization kept frozen.
    trained = apply_trainable(transfer, plan.trainable, train_bn=options.train_bn)
    train_model = transfer.model if plan.tap is None else cuts.top_model(transfer.model, plan.tap)
    x, y = inputs.train(plan.tap)
    validation = inputs.validation(plan.tap)
    augmenter, views = None, False
    if options.augment:
        augmenter, x, views = stage_augmentation(transfer, plan, inputs, options, x, y)
        if augmenter is not None and augmenter.soft_labels:
            y, validation = soft_label_arrays(transfer, augmenter, y, validation)
    epochs = plan.epochs or options.epochs
    steps_per_epoch = max(1, math.ceil(len(y) / options.batch_size))
    regularize_reused(transfer, trained, options)
    factory = optimizers.optimizer_factory(
        options.optimizer, clipnorm=options.clip_norm, clipvalue=options.clip_value
    )
    loss = transfer.loss
    if augmenter is not None and augmenter.soft_labels:
        # mixup / cutmix train on mixed label probabilities: a loss that takes them.
        losses = keras.losses
        soft = (
            losses.BinaryCrossentropy if sigmoid_head(transfer) else losses.CategoricalCrossentropy
        )
        loss = soft(label_smoothing=options.label_smoothing)
    lr = plan.lr
    if (
        options.stage_lr == "find"
        and options.unfreeze == "gradual"
        and options.lr is None
        and progress.epochs_done == 0
    ):
        from reuse.training.lr_range import stage_lr

        x_sweep = x[0] if views else x
        lr = stage_lr(
            train_model, factory, loss, x_sweep, y, options, augment=augmenter, fallback=lr
        )
        if plan.index > 0:
            # A later stage fine-tunes what the earlier ones found: never above its lr.
            lr = min(lr, plan.lr)
        plan.lr = lr
    lr_value, schedule_callbacks = schedules.parse_schedule(
        options.schedule or "constant",
        lr=lr,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation=validation is not None,
    )
    if plan.lr_scales and any(s != 1.0 for s in plan.lr_scales.values()):
        from reuse.training.discriminative import GroupedOptimizerModel

        model_to_fit = GroupedOptimizerModel(train_model, factory, lr_value, plan.lr_scales)
        model_to_fit.compile(
            loss=loss,
            metrics=list(transfer.metrics),
        )
        stage_optimizers = [opt for _, opt, _ in model_to_fit.groups]
    else:
        model_to_fit = train_model
        model_to_fit.compile(
            optimizer=loss_scaled(factory(lr_value), options.mixed_precision),
            loss=loss,
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
    recorder = HistoryRecorder(plan, history, model_to_fit, started)
    guard = DivergenceGuard()
    stopper = StageEarlyStopping(monitor, options.early_stopping, progress)
    cbs = [guard, recorder, stopper, *schedule_callbacks, *(callbacks or [])]
    if on_epoch is not None:
        cbs.append(
            EpochHook(lambda epoch: on_epoch(model_to_fit, stage_optimizers, progress, epoch + 1))
        )
    delay = float(os.environ.get("REUSE_TEST_EPOCH_DELAY", "0") or 0)
    if delay:  # lets the resume test kill a run in the middle of a stage
        cbs.append(EpochHook(lambda epoch: time.sleep(delay)))
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
            augment=augmenter,
            views=views,
        )
    if guard.diverged:
        guard.restore()
    if options.early_stopping is not None and progress.best_weights is not None:
        model_to_fit.set_weights(progress.best_weights)
    return StageResult(
        index=plan.index,
        trainable=trained,
        tap=plan.tap,
        epochs=progress.epochs_done,
        best_metric=progress.best,
        monitor=monitor,
        lr=float(plan.lr),
        seconds=time.perf_counter() - started,
        diverged=guard.diverged,
        cut=transfer.cut,
        params=int(sum(int(np.prod(v.shape)) for v in train_model.trainable_weights)),
    )


def _require_tensorboard() -> None:
    from reuse.core.extras import require

    require("tensorboard", "--tensorboard")


def sigmoid_head(transfer) -> bool:
    """Whether the model ends in sigmoid units trained with binary cross-entropy (two classes
    as one 0/1 unit, or multi-label): mixup / cutmix then mix the 0/1 targets themselves."""
    return getattr(transfer.loss, "name", "") == "binary_crossentropy"


def soft_label_arrays(transfer, augmenter, y, validation):
    """Training and validation labels in the form mixup / cutmix mix: float32 (N, units) 0/1
    targets for a sigmoid head, else one-hot validation labels (the augmenter one-hot encodes
    the training batches itself)."""
    if sigmoid_head(transfer):
        units = int(transfer.model.outputs[0].shape[-1])

        def targets(labels):
            return np.asarray(labels, dtype="float32").reshape(-1, units)

        y = targets(y)
        return y, None if validation is None else (validation[0], targets(validation[1]))
    if validation is not None:
        validation = (validation[0], np.asarray(augmenter.one_hot(validation[1])))
    return y, validation


def stage_augmentation(transfer, plan: StagePlan, inputs: TrainingInputs, options, x, y):
    """The augmentation of a stage: `(augmenter or None, x, views)`.

    From the raw inputs (`plan.tap` None), an Augmenter built from `options.augment` runs on
    every training batch (seeded by --seed and the stage). From a cached tap, the cache must
    hold augmented views made with the same spec (`cache-features --augment SPEC --views K`):
    `x` becomes its (K, N, ...) views and epoch e trains on view e mod K. A cache made with
    `--input-views` holds views of the raw rows too, and the stages that train from the raw
    inputs use them instead of augmenting on the fly (mixup and cutmix still mix batches).
    `--augment mixup` alone has no per-row part to cache: a stage from a cached tap mixes the
    clean features, and one from the raw inputs mixes the raw rows, with or without views.

    Raises:
        CacheMismatch: training from a cache whose views were made with another spec, or none.
    """
    from reuse.augment.pipeline import build_augmenter, infer_value_range
    from reuse.augment.spec import AugmentSpec, parse_augment

    spec = parse_augment(options.augment)
    if spec.batch_level and transfer.task == "regression" and not sigmoid_head(transfer):
        raise UsageError(
            f"--augment {spec.canonical()}: mixup and cutmix mix class labels, and these "
            "labels are regression targets",
            "drop mixup and cutmix from --augment",
        )
    num_classes = None
    if transfer.task == "multiclass" and not sigmoid_head(transfer):
        num_classes = int(transfer.model.outputs[0].shape[-1])
    per_row = spec.per_sample()
    if plan.tap is not None or (inputs.has_input_views() and per_row):
        # mixup alone has no per-row part to cache as views: it mixes the clean features.
        views = (
            inputs.train_views(plan.tap, per_row.canonical(), options.image_shape)
            if per_row or not spec.batch_level
            else None
        )
        if not spec.batch_level:
            return None, views, True
        if spec.cutmix and plan.tap is not None:
            raise UsageError(
                "cutmix pastes patches of images, and a cached tap holds features, not images",
                "use mixup with a feature cache, or train without --features",
            )
        # mixup (and cutmix, on cached input views) still mix the batches while training.
        rows = x if views is None else views[0]
        mixer = build_augmenter(
            AugmentSpec(mixup=spec.mixup, cutmix=spec.cutmix),
            rows.shape[1:],
            options.image_shape if plan.tap is None else None,
            (options.seed or 0) + 7919 * plan.index,
            value_range=infer_value_range(rows) if plan.tap is None else (0.0, 1.0),
            num_classes=num_classes,
        )
        return mixer, (x if views is None else views), views is not None
    if inputs.cache is not None and inputs.cache.view_count and per_row:
        from reuse.core import report

        report.info(
            f"note: stage {plan.index} trains layers below every cached tap, so it augments the "
            "raw rows on the fly; `cache-features --input-views` caches their views too"
        )
    augmenter = build_augmenter(
        spec,
        input_shape=x.shape[1:],
        image_shape=options.image_shape,
        seed=(options.seed or 0) + 7919 * plan.index,
        value_range=infer_value_range(x),
        num_classes=num_classes,
    )
    return augmenter, x, False


def check_stage_augmentation(plans, inputs: TrainingInputs, options) -> None:
    """Refuse, before any stage trains, an `--augment` that a stage training from the raw rows
    could not apply (image operations on rows that are not images, and no --image-shape):
    otherwise the error came after the cached stages had trained.

    Raises:
        UsageError: as `reuse.augment.pipeline.resolve_image_shape`.
    """
    if not options.augment or inputs.x is None or inputs.has_input_views():
        return
    if not any(plan.tap is None for plan in plans):
        return
    from reuse.augment.pipeline import resolve_image_shape
    from reuse.augment.spec import parse_augment

    resolve_image_shape(parse_augment(options.augment), inputs.x.shape[1:], options.image_shape)


def sample_augmenter(options, x, seed_offset: int = 0):
    """The per-row part of `options.augment` (mixup and cutmix dropped) as an Augmenter for
    rows like `x`, or None when there is none: what `lr-find` and `check` train with (mixed
    labels would change the loss they measure)."""
    if not options.augment:
        return None
    from reuse.augment.pipeline import build_augmenter, infer_value_range
    from reuse.augment.spec import parse_augment

    spec = parse_augment(options.augment).per_sample()
    if not spec:
        return None
    return build_augmenter(
        spec,
        input_shape=x.shape[1:],
        image_shape=options.image_shape,
        seed=(options.seed or 0) + seed_offset,
        value_range=infer_value_range(x),
    )
