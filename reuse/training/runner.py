"""The stage loop: the mechanism every fine-tuning mode runs on.

`run_stages` takes a list of `StagePlan`s (which reused layers train, at what learning rate,
from which cached tap) and runs them in order: it sets each stage's trainability, trains it
(`reuse.training.stage.run_stage`), checkpoints after every epoch and resumes from a
checkpoint, and, when asked to judge, keeps a stage only if the validation metric improved;
otherwise the best weights come back and the loop stops. It decides nothing about *which*
stages to run: that is a policy (`reuse.training.plans`), in the way Lightning splits
`BaseFinetuning` (freeze/unfreeze mechanism, state for resume) from `BackboneFinetuning`
(one schedule).
"""

from __future__ import annotations

import numpy as np

from reuse.core import report
from reuse.training.inputs import TrainingInputs
from reuse.training.options import FinetuneOptions
from reuse.training.stage import StagePlan, StageResult, check_stage_augmentation, run_stage
from reuse.training.transfer import TransferModel


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def run_stages(
    transfer: TransferModel,
    inputs: TrainingInputs,
    options: FinetuneOptions,
    history: list[dict],
    *,
    plans: list[StagePlan],
    checkpoint_dir=None,
    resume: bool = False,
    judge: bool = True,
    prior: list[StageResult] | None = None,
    callbacks=(),
    extra_fingerprint: dict | None = None,
    announce: bool = True,
) -> list[StageResult]:
    """Run `plans` in order; with `judge`, keep a stage only if the validation metric improves.

    Args:
        transfer: the model being fine-tuned and what each part of it is.
        inputs: training and validation rows (raw or from cached taps); without validation
            and with `judge`, 20% of the training rows are held out (seeded).
        options: the run's options (epochs per stage, early-stopping patience, seed...).
        history: the per-epoch rows, appended to in place.
        plans: the stages, from a policy in `reuse.training.plans`.
        prior: stage results already run (the reuse-depth search), counted as kept stages.
        checkpoint_dir, resume: checkpoint after every epoch; continue a checkpointed run.
        callbacks: more Keras callbacks for every stage (a progress bar).
        extra_fingerprint: more option values the checkpoint records and a resume must match
            (a caller's own options, e.g. `reuse.pretrain`'s architecture).
        announce: print one line per finished stage on stderr.

    Returns the stage table (one StageResult per stage run; `kept` tells which counted).
    With `checkpoint_dir`, a checkpoint is written after every epoch; with `resume`, the run
    continues from it at the same stage and epoch, with the same trainable layers and
    optimizer state.
    """
    from dataclasses import asdict

    from reuse.training import checkpoints, distribute
    from reuse.training.stage import StageProgress
    from reuse.training.transfer import apply_trainable

    if judge and not inputs.has_validation():
        report.info(
            "note: gradual unfreezing judges stages on validation data; none given, so 20% of the training rows are held out (--val-split)"
        )
        inputs.hold_out(0.2, options.seed)
    results: list[StageResult] = list(prior or [])
    kept_prior = [r for r in results if r.kept and r.best_metric is not None]
    best_metric = kept_prior[-1].best_metric if kept_prior else None
    best_weights = _weights(transfer.model) if kept_prior else None
    epoch, first = len(history), 0
    progress = None
    fingerprint = {
        k: v for k, v in asdict(options).items() if k not in ("epochs_hint", "tensorboard")
    }
    fingerprint.update(extra_fingerprint or {})
    # Under a multi-worker strategy every worker trains alike, and only the chief writes.
    chief = distribute.is_chief(distribute.active_strategy())
    saver = (
        checkpoints.Checkpointer(checkpoint_dir, fingerprint) if checkpoint_dir and chief else None
    )
    if resume:
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

    check_stage_augmentation(plans, inputs, options)
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
            callbacks=list(callbacks or ()),
        )
        progress = None
        epoch = len(history)
        improved = result.best_metric is not None and (
            best_metric is None or result.best_metric < best_metric
        )
        result.kept = (bool(improved) or not judge) and result.best_metric is not None
        results.append(result)
        if announce:
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
