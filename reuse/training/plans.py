"""Stage plans: the policies that decide which reused layers train in which stage.

- `single_stage`: one stage that trains what the model marks trainable (`--unfreeze none`)
  or every reused layer (`--unfreeze all`).
- `gradual_unfreezing`: stage 0 trains the head with every reused layer frozen; each further
  stage unfreezes the next `unfreeze_step` reused layers from the top and divides the learning
  rate by `stage_lr_div` (ULMFiT's gradual unfreezing, Howard & Ruder 2018, with `--layer-lr-decay`
  as its discriminative fine-tuning). Each stage trains from the deepest cached tap below its
  lowest trainable layer.
- `search_reuse_depth`: train the head on the reused layers minus the top 0..K layers and keep
  the best cut by validation (Géron, *Hands-On ML*, ch. 11: "try dropping the top hidden layers").

The stage loop that runs a plan is `reuse.training.runner.run_stages` (the mechanism).
"""

from __future__ import annotations

from reuse.core import report
from reuse.core.errors import TrainingDiverged, UsageError
from reuse.training.inputs import TrainingInputs, deepest_tap_below
from reuse.training.options import FinetuneOptions, default_lr
from reuse.training.stage import StagePlan
from reuse.training.transfer import TransferModel, build_transfer_model


def search_reuse_depth(base, y, x, cache, val_arrays, options: FinetuneOptions):
    """Try the head on the reused layers minus the top 0..K layers; keep the best by validation.

    The classic advice for small data: if the head does poorly, drop the top reused layer or
    two (their features are the most specific to the old task) and try again.
    """
    from dataclasses import replace

    from reuse.surgery import cuts
    from reuse.training.runner import run_stages

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
        stage = run_stages(transfer, inputs, options, history, plans=[plan])
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


def gradual_unfreezing(
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
        scales = layer_lr_scales(trainable, options.layer_lr_decay)
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


def layer_lr_scales(top_first: list[str], decay: float | None) -> dict[str, float]:
    """Discriminative learning rates (`--layer-lr-decay F`): the top trained reused layer gets
    lr / F, the next lr / F^2, ...; the head keeps lr. {} without a decay.

    Args:
        top_first: reused leaf paths that train, the top one first.
        decay: F > 0, or None.
    """
    if not decay:
        return {}
    return {name: decay ** -(i + 1) for i, name in enumerate(top_first)}


def single_stage(
    transfer: TransferModel, trainable: list[str], tap: str | None, options: FinetuneOptions
) -> list[StagePlan]:
    """One stage training `trainable` (reused leaf paths; the head always trains) from `tap`
    (None: the raw inputs), at `--lr` or the optimizer's default learning rate.
    `--layer-lr-decay` scales the reused layers that can learn (`unfreeze_order`) from the
    top down, as in a gradual stage."""
    learners = [p for p in unfreeze_order(transfer, train_bn=options.train_bn) if p in trainable]
    scales = layer_lr_scales(learners, options.layer_lr_decay)
    lr = options.lr or default_lr(options.optimizer)
    # Listed from the top down, as gradual stages list theirs.
    top_down = {p: i for i, p in enumerate(unfreeze_order(transfer, train_bn=True))}
    ordered = sorted(trainable, key=lambda p: top_down.get(p, len(top_down)))
    return [StagePlan(0, ordered, lr, tap, lr_scales=scales)]
