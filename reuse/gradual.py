"""Unfreeze gradually: train the head, then unfreeze reused layers from the top, stage by stage.

Stage 0 trains the head with every reused layer frozen. Each further stage unfreezes the next
`unfreeze_step` reused layers (from the top), divides the learning rate by `stage_lr_div`, and
trains from the deepest cached tap below its lowest trainable layer. A stage is kept only if
the validation metric improves; otherwise the best weights come back and the run stops.
With `layer_lr_decay` F, each lower unfrozen layer learns F times slower than the one above it
(one optimizer per group: see reuse.discriminative).
"""

from __future__ import annotations

import numpy as np

from reuse import report
from reuse.training import (
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
    from reuse.layer_tree import find

    order = []
    for path in reversed(transfer.reused):
        layer = find(transfer.model, path).layer
        if not layer.weights:
            continue
        if type(layer).__name__ == "BatchNormalization" and not train_bn:
            continue
        order.append(path)
    return order


def plan_stages(transfer: TransferModel, options: FinetuneOptions, taps: list[str]) -> list[StagePlan]:
    """Every stage the run may take, in order (the run stops early when a stage does not help)."""
    base_lr = options.lr or default_lr(options.optimizer)
    order = unfreeze_order(transfer, train_bn=options.train_bn)
    limit = len(order) if options.max_unfreeze is None else min(len(order), max(0, options.max_unfreeze))
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
        plans.append(StagePlan(stage, trainable, lr, deepest_tap_below(transfer, trainable, taps), options.stage_epochs, scales))
        stage += 1
    return plans


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def run(transfer: TransferModel, inputs: TrainingInputs, options: FinetuneOptions, history: list[dict]) -> list[StageResult]:
    """Run the stages; keep a stage only if the validation metric improves.

    Returns the stage table (one StageResult per stage run; `kept` tells which counted).
    """
    if not inputs.has_validation():
        report.info("note: gradual unfreezing judges stages on validation data; none given, so 20% of the training rows are held out (--val-split)")
        inputs.__init__(  # re-split the same inputs
            transfer, x=inputs.x, y=inputs.y, cache=inputs.cache, val=None, val_split=0.2, seed=options.seed
        )
    plans = plan_stages(transfer, options, inputs.taps)
    results: list[StageResult] = []
    best_metric, best_weights = None, None
    epoch = 0
    for plan in plans:
        if plan.tap is None and inputs.x is None:
            report.info(f"stage {plan.index}: no cached tap lies below {plan.trainable[-1]} and no raw data was given; stopping")
            break
        result = run_stage(transfer, plan, inputs, options, history, initial_epoch=epoch)
        epoch += result.epochs
        improved = result.best_metric is not None and (best_metric is None or result.best_metric < best_metric)
        result.kept = bool(improved) and not (result.diverged and result.best_metric is None)
        results.append(result)
        _announce(result)
        if result.kept:
            best_metric, best_weights = result.best_metric, _weights(transfer.model)
            if result.diverged:
                report.warn(f"stage {plan.index}: the loss became NaN or Inf; kept the last good weights")
            continue
        if best_weights is not None:
            transfer.model.set_weights(best_weights)
        why = "the loss diverged (NaN/Inf): learning rate too high, bad initialization, or bad inputs" if result.diverged else "the validation metric did not improve"
        report.info(f"stage {plan.index} not kept ({why}); back to the weights of stage {results[-2].index if len(results) > 1 else 0}")
        break
    # Leave the model's trainability as it was at the best stage.
    from reuse.training import apply_trainable

    kept = [r for r in results if r.kept]
    apply_trainable(transfer, kept[-1].trainable if kept else [], train_bn=options.train_bn)
    return results


def _announce(result: StageResult) -> None:
    best = "n/a" if result.best_metric is None else f"{result.best_metric:.4f}"
    report.info(
        f"stage {result.index}: trained {len(result.trainable)} reused layer(s) from tap "
        f"{result.tap or 'input'}, {result.epochs} epochs, best {result.monitor} {best}, lr {result.lr:.3g}"
    )
