"""Unfreeze gradually: train the head, then unfreeze reused layers from the top, stage by stage.

Stage 0 trains the head with every reused layer frozen. Each further stage unfreezes the next
`unfreeze_step` reused layers (from the top), divides the learning rate by `stage_lr_div`, and
trains from the deepest cached tap below its lowest trainable layer. A stage is kept only if
the validation metric improves; otherwise the best weights come back and the run stops.
With `layer_lr_decay` F, each lower unfrozen layer learns F times slower than the one above it
(one optimizer per group: see reuse.training.discriminative).
"""

from __future__ import annotations

import numpy as np

from reuse.core import report
from reuse.training.finetune import (
    FinetuneOptions,
    StagePlan,
    StageResult,
    TrainingInputs,
    TransferModel,
    deepest_tap_below,
    default_lr,
    run_stage,
)


def unfreeze_order(transfer: TransferModel, *, train_bn: bool = False) -> list[str]:
    """Reused layers that can learn, top first (layers without weights and, unless train_bn,
    BatchNormalization are skipped: unfreezing them changes nothing or hurts on small data)."""
    from reuse.surgery.layer_tree import find

    order = []
    for path in reversed(transfer.reused):
        layer = find(transfer.model, path).layer
        if not layer.weights:
            continue
        if type(layer).__name__ == "BatchNormalization" and not train_bn:
            continue
        order.append(path)
    return order


def plan_stages(
    transfer: TransferModel, options: FinetuneOptions, taps: list[str]
) -> list[StagePlan]:
    """Every stage the run may take, in order (the run stops early when a stage does not help)."""
    base_lr = options.lr or default_lr(options.optimizer)
    order = unfreeze_order(transfer, train_bn=options.train_bn)
    limit = (
        len(order)
        if options.max_unfreeze is None
        else min(len(order), max(0, options.max_unfreeze))
    )
    plans = [StagePlan(0, [], base_lr, deepest_tap_below(transfer, [], taps), options.stage_epochs)]
    count, stage = 0, 1
    while count < limit:
        count = min(limit, count + options.unfreeze_step)
        trainable = order[:count]
        lr = base_lr / (options.stage_lr_div**stage)
        scales = {}
        if options.layer_lr_decay:
            # The top unfrozen layer gets lr / F, the next lr / F^2, ...; the head keeps lr.
            scales = {name: options.layer_lr_decay ** -(i + 1) for i, name in enumerate(trainable)}
        plans.append(
            StagePlan(
                stage,
                trainable,
                lr,
                deepest_tap_below(transfer, trainable, taps),
                options.stage_epochs,
                scales,
            )
        )
        stage += 1
    return plans


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def run(
    transfer: TransferModel,
    inputs: TrainingInputs,
    options: FinetuneOptions,
    history: list[dict],
    *,
    plans: list[StagePlan] | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    judge: bool = True,
    prior: list[StageResult] | None = None,
) -> list[StageResult]:
    """Run the stages; with `judge`, keep a stage only if the validation metric improves.

    Returns the stage table (one StageResult per stage run; `kept` tells which counted).
    With `checkpoint_dir`, a checkpoint is written after every epoch; with `resume`, the run
    continues from it at the same stage and epoch, with the same trainable layers and
    optimizer state.
    """
    from dataclasses import asdict

    from reuse.training import checkpoints
    from reuse.training.finetune import StageProgress, apply_trainable

    if judge and not inputs.has_validation():
        report.info(
            "note: gradual unfreezing judges stages on validation data; none given, so 20% of the training rows are held out (--val-split)"
        )
        inputs.hold_out(0.2, options.seed)
    plans = plans if plans is not None else plan_stages(transfer, options, inputs.taps)
    results: list[StageResult] = list(prior or [])
    kept_prior = [r for r in results if r.kept and r.best_metric is not None]
    best_metric = kept_prior[-1].best_metric if kept_prior else None
    best_weights = _weights(transfer.model) if kept_prior else None
    epoch, first = len(history), 0
    progress = None
    fingerprint = {
        k: v for k, v in asdict(options).items() if k not in ("epochs_hint", "tensorboard")
    }
    saver = checkpoints.Checkpointer(checkpoint_dir, fingerprint) if checkpoint_dir else None
    if resume:
        if checkpoint_dir is None:
            from reuse.core.errors import UsageError

            raise UsageError(
                "--resume needs --checkpoint-dir", "pass the folder of the run to resume"
            )
        state = checkpoints.load_state(checkpoint_dir, fingerprint)
        transfer.model.set_weights(checkpoints.load_arrays(state.weights))
        results = [StageResult(**r) for r in state.results]
        history[:] = state.history
        best_metric = state.best_metric
        best_weights = checkpoints.load_arrays(state.best_weights) if state.best_weights else None
        epoch, first = state.global_epoch, state.stage
        progress = StageProgress(
            epochs_done=state.stage_epochs_done,
            best=state.stage_best,
            wait=state.stage_wait,
            best_weights=checkpoints.load_arrays(state.stage_best_weights)
            if state.stage_best_weights
            else None,
            optimizer_state=checkpoints.load_arrays(state.optimizer) if state.optimizer else None,
        )
        report.info(
            f"resuming at stage {first}, epoch {state.stage_epochs_done + 1} of that stage (trainable: {', '.join(state.trainable) or 'head only'})"
        )

    for plan in [p for p in plans if p.index >= first]:
        if plan.tap is None and inputs.x is None:
            report.info(
                f"stage {plan.index}: no cached tap lies below {plan.trainable[-1]} and no raw data was given; stopping"
            )
            break

        def save(
            model_to_fit,
            optimizers,
            stage_progress,
            global_epoch,
            plan=plan,
            best=(best_metric, best_weights),
        ):
            saver.save(
                model=transfer.model,
                optimizers=optimizers,
                stage=plan.index,
                stage_epochs_done=stage_progress.epochs_done,
                global_epoch=global_epoch,
                trainable=plan.trainable,
                results=[asdict(r) for r in results],
                history=history,
                best_metric=best[0],
                best_weights=best[1],
                stage_best=stage_progress.best,
                stage_wait=stage_progress.wait,
                stage_best_weights=stage_progress.best_weights,
            )

        result = run_stage(
            transfer,
            plan,
            inputs,
            options,
            history,
            initial_epoch=epoch,
            progress=progress,
            on_epoch=save if saver else None,
        )
        progress = None
        epoch = len(history)
        improved = result.best_metric is not None and (
            best_metric is None or result.best_metric < best_metric
        )
        result.kept = (bool(improved) or not judge) and result.best_metric is not None
        results.append(result)
        _announce(result)
        if result.kept:
            best_metric, best_weights = result.best_metric, _weights(transfer.model)
            if result.diverged:
                report.warn(
                    f"stage {plan.index}: the loss became NaN or Inf; kept the last good weights"
                )
            continue
        if best_weights is not None:
            transfer.model.set_weights(best_weights)
        why = (
            "the loss diverged (NaN/Inf): learning rate too high, bad initialization, or bad inputs"
            if result.diverged
            else "the validation metric did not improve"
        )
        back = (
            f"back to the weights of stage {[r for r in results if r.kept][-1].index}"
            if best_weights is not None
            else "nothing kept"
        )
        report.info(f"stage {plan.index} not kept ({why}); {back}")
        break
    # Leave the model's trainability as it was at the best stage.
    kept = [r for r in results if r.kept]
    apply_trainable(transfer, kept[-1].trainable if kept else [], train_bn=options.train_bn)
    return results


def _announce(result: StageResult) -> None:
    best = "n/a" if result.best_metric is None else f"{result.best_metric:.4f}"
    report.info(
        f"stage {result.index}: trained {len(result.trainable)} reused layer(s) from tap "
        f"{result.tap or 'input'}, {result.epochs} epochs, best {result.monitor} {best}, lr {result.lr:.3g}"
    )
