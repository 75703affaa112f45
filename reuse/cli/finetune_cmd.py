"""`reuse finetune`: put a new head on the reused layers and train it (the library does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli import training_options as T
from reuse.cli.common import (
    JsonOpt,
    ModelArg,
    OutputKeyOpt,
    SeedOpt,
    UnsafeOpt,
    command,
    emit_record,
)
from reuse.cli.training_options import (
    SCHEDULE_HELP,
    CutOpt,
    FeaturesOpt,
    HeadOpt,
    LossOpt,
    NoCacheOpt,
    OptimizerOpt,
    UnfreezeOpt,
)


@command
def finetune_command(
    ctx: typer.Context,
    model: ModelArg = None,
    data: D.DataOpt = None,
    val: D.ValOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the trained model (.keras). Default: <model>.tuned.keras",
        ),
    ] = None,
    features: FeaturesOpt = None,
    no_cache: NoCacheOpt = False,
    cut: CutOpt = None,
    head: HeadOpt = "auto",
    loss: LossOpt = None,
    optimizer: OptimizerOpt = "adam",
    lr: Annotated[
        str | None,
        typer.Option(
            "--lr",
            help="Learning rate (default: the optimizer's usual one, e.g. 1e-3 for adam), or 'from-record' to use lr-find's suggestion.",
        ),
    ] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help=SCHEDULE_HELP)] = None,
    l1: Annotated[float, typer.Option("--l1", help="L1 penalty on the trained kernels.")] = 0.0,
    l2: Annotated[float, typer.Option("--l2", help="L2 penalty on the trained kernels.")] = 0.0,
    dropout: Annotated[
        float, typer.Option("--dropout", help="Dropout rate before the head.")
    ] = 0.0,
    max_norm: Annotated[
        float | None,
        typer.Option(
            "--max-norm",
            help="Max-norm constraint (each unit's incoming weights at most R) on every trained "
            "kernel: the head's and those of unfrozen reused layers.",
            metavar="R",
        ),
    ] = None,
    clip_norm: Annotated[
        float | None, typer.Option("--clip-norm", help="Clip each gradient to this norm.")
    ] = None,
    clip_value: Annotated[
        float | None, typer.Option("--clip-value", help="Clip gradient values to [-v, v].")
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(
            "--label-smoothing",
            help="Label smoothing for classification losses. Default: 0, or 0.1 with "
            "--unfreeze gradual --augment.",
            show_default=False,
        ),
    ] = None,
    early_stopping: Annotated[
        int | None,
        typer.Option(
            "--early-stopping",
            help="Stop after N epochs without improvement and restore the best weights. "
            "Default: 3 per stage with --unfreeze gradual (20 with --augment); 5 when --epochs is "
            "not given.",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="Epochs (the cap per stage with --unfreeze gradual, each stage stopping early when "
            "the validation loss stops improving). Default: 10 per stage for gradual (200 with "
            "--augment), else 100 with early stopping.",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Rows per training step. Default: 32, or 20 with --unfreeze gradual --augment.",
            show_default=False,
        ),
    ] = None,
    unfreeze: UnfreezeOpt = "none",
    unfreeze_step: Annotated[
        int, typer.Option("--unfreeze-step", help="Layers unfrozen per stage (gradual).")
    ] = 2,
    stage_lr_div: Annotated[
        float | None,
        typer.Option(
            "--stage-lr-div",
            help="Divide the learning rate by this at each stage (gradual). Default: 2, or 1 "
            "with --augment.",
            show_default=False,
        ),
    ] = None,
    stage_lr: Annotated[
        str,
        typer.Option(
            "--stage-lr",
            help="How each gradual stage gets its learning rate when --lr is not given: div "
            "(the first stage's, divided by --stage-lr-div per stage) or find (a short range test "
            "per stage, lr-find's valley rule).",
        ),
    ] = "div",
    max_unfreeze: Annotated[
        int | None,
        typer.Option("--max-unfreeze", help="Unfreeze at most N reused layers (gradual)."),
    ] = None,
    layer_lr_decay: Annotated[
        float | None,
        typer.Option(
            "--layer-lr-decay",
            help="Each lower unfrozen layer learns F times slower than the one above (e.g. 2.6).",
        ),
    ] = None,
    train_bn: Annotated[
        bool,
        typer.Option(
            "--train-bn",
            help="Let unfrozen BatchNormalization layers train (default: they stay in inference mode).",
        ),
    ] = False,
    reuse_depth: Annotated[
        str,
        typer.Option(
            "--reuse-depth",
            help="keep, or search[:K]: also try dropping the top 1..K reused layers and keep the best (gradual).",
        ),
    ] = "keep",
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Write the per-epoch history as PATH.csv and PATH.json. Default: next to the model.",
        ),
    ] = None,
    tensorboard: Annotated[
        Path | None, typer.Option("--tensorboard", help="Write TensorBoard logs to DIR.")
    ] = None,
    augment: T.AugmentOpt = None,
    image_shape: T.ImageShapeOpt = None,
    lora: Annotated[
        int | None,
        typer.Option(
            "--lora",
            metavar="RANK",
            help="Train low-rank adapters (Keras' LoRA) of this rank on the reused layers "
            "instead of unfreezing them: their kernels stay frozen, bit for bit; the head trains "
            "in full. The stage table shows the parameters trained.",
        ),
    ] = None,
    lora_layers: Annotated[
        str | None,
        typer.Option(
            "--lora-layers",
            metavar="REGEX",
            help="Reused layers that get adapters (full match of the name or path). Default: "
            "every Dense, EinsumDense, Embedding and Conv reused layer.",
        ),
    ] = None,
    lora_alpha: Annotated[
        float | None,
        typer.Option(
            "--lora-alpha",
            help="Scale of the adapters' update, alpha / rank (default: alpha = rank).",
        ),
    ] = None,
    lora_save: Annotated[
        str,
        typer.Option(
            "--lora-save",
            help="merged: the model with the adapters folded into its kernels (plain Keras "
            "loads it); adapters: only the adapters and the head, a small .npz for "
            "`reuse lora merge BASE ADAPTERS`.",
        ),
    ] = "merged",
    mixed_precision: T.MixedPrecisionOpt = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option("--checkpoint-dir", help="Write a checkpoint after every epoch into DIR."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run checkpointed in --checkpoint-dir: same stage, epoch, trainable layers, optimizer state and schedule position.",
        ),
    ] = False,
    distribute: Annotated[
        str,
        typer.Option(
            "--distribute",
            help="none | mirrored (tf.distribute over all local GPUs, else the --cpu-devices) | "
            "multi-worker (several hosts, configured from TF_CONFIG). --batch-size is the global batch.",
        ),
    ] = "none",
    cpu_devices: Annotated[
        int | None,
        typer.Option(
            "--cpu-devices",
            metavar="N",
            help="Split the CPU into N logical devices (trials and tests of --distribute without GPUs).",
        ),
    ] = None,
    labels: D.LabelsOpt = None,
    x_key: D.XKeyOpt = None,
    y_key: D.YKeyOpt = None,
    label_col: D.LabelColOpt = None,
    image_size: D.ImageSizeOpt = None,
    split: D.SplitOpt = None,
    classes: D.ClassesOpt = None,
    per_class: D.PerClassOpt = None,
    limit: D.LimitOpt = None,
    val_split: D.ValSplitOpt = None,
    seed: SeedOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Take the training options from this JSON file (the best.json of `reuse tune`); "
            "flags given on the command line override it.",
        ),
    ] = None,
    json_flag: JsonOpt = False,
    output_key: OutputKeyOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Put a new head on the reused layers and train it.

    Trains from the feature cache when one matches the model (--features, or the record of
    `reuse cache-features` on stdin): the frozen layers below the cached tap are not run.

    Examples:

        reuse finetune base.keras --data train.npz --val valid.npz -o tuned.keras

        reuse finetune base.keras --data train.npz --head dense:64:elu,dropout:0.3,dense:5:softmax --optimizer nesterov --lr 0.01 --schedule exponential:decay_rate=0.1,decay_steps=1000

        reuse freeze base.keras --upto hidden2 | reuse cache-features --data train.npz | reuse finetune --data train.npz --unfreeze gradual

        reuse finetune base.keras --data train.npz --val valid.npz --unfreeze gradual --augment shift:0.08,rotate:0.04,zoom:0.08 --image-shape 28,28,1

        reuse finetune base.keras --data train.npz --val valid.npz --lora 4 --lora-layers 'hidden[45]'

        reuse finetune base.keras --data train.npz --distribute mirrored --batch-size 256
        reuse finetune base.keras --data train.npz --val valid.npz --config best.json --epochs 30
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_dir, check_output_path
    from reuse.core.naming import default_output
    from reuse.formats.model_io import check_model_output
    from reuse.training.finetune import finetune
    from reuse.training.options import FinetuneOptions
    from reuse.training.setup import prepare_run

    path, upstream = record.resolve_input(model)
    learning_rate = _learning_rate(lr, upstream)
    adapters_only = lora is not None and lora_save == "adapters"
    out = (
        Path(output)
        if output
        else default_output(path, "adapters", ".npz")
        if adapters_only
        else default_output(path, "tuned")
    )
    if adapters_only and out.suffix.lower() != ".npz":
        from reuse.core.errors import OutputError

        raise OutputError(
            f"--lora-save adapters writes a .npz file. Received: -o {out}", "use -o NAME.npz"
        )
    if not adapters_only:
        check_model_output(out)  # before training, not after it
    D.require_val(val)
    check_output_path(out, [path, data, features, (upstream or {}).get("features")])
    if history is not None:
        check_output_path(Path(f"{history}.csv"), [path, data], flag="--history")
    for folder, flag in ((tensorboard, "--tensorboard"), (checkpoint_dir, "--checkpoint-dir")):
        if folder is not None:
            check_output_dir(folder, flag)
    if tensorboard is not None:
        from reuse.core.extras import require

        require("tensorboard", "--tensorboard")
    opts = D.data_options_from(locals())
    options = FinetuneOptions(
        cut=cut,
        head=head,
        loss=loss,
        optimizer=optimizer,
        lr=learning_rate,
        schedule=schedule,
        l1=l1,
        l2=l2,
        dropout=dropout,
        max_norm=max_norm,
        clip_norm=clip_norm,
        clip_value=clip_value,
        label_smoothing=label_smoothing,
        early_stopping=early_stopping,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        val_split=val_split,
        unfreeze=unfreeze,
        unfreeze_step=unfreeze_step,
        stage_lr_div=stage_lr_div,
        stage_lr=stage_lr,
        max_unfreeze=max_unfreeze,
        layer_lr_decay=layer_lr_decay,
        train_bn=train_bn,
        reuse_depth=reuse_depth,
        tensorboard=str(tensorboard) if tensorboard else None,
        augment=augment,
        image_shape=image_shape,
        lora=lora,
        lora_layers=lora_layers,
        lora_alpha=lora_alpha,
        lora_save=lora_save,
        mixed_precision=mixed_precision,
    )
    taken = _apply_config(ctx, config, options) if config is not None else []
    options.check()  # every value refused before TensorFlow starts
    if resume:
        from reuse.training.checkpoints import require_checkpoint

        require_checkpoint(checkpoint_dir)
    # The strategy comes first: splitting the CPU and joining workers precede any other TF use.
    from reuse.training.distribute import is_chief, make_strategy, scope

    strategy = make_strategy(distribute, cpu_devices)
    with scope(strategy):  # the base model's variables are made replicated
        setup = prepare_run(
            path,
            opts,
            upstream=upstream,
            val=val,
            features=features,
            no_cache=no_cache,
            cut=options.cut,
            unsafe=unsafe,
            output_key=output_key,
        )
    options.cut = setup.cut
    features, base, dataset, val_set = setup.features, setup.model, setup.data, setup.val
    result = finetune(
        base,
        dataset,
        val=val_set,
        features=features,
        options=options,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        strategy=strategy,
    )
    if not is_chief(strategy):
        report.info("this worker is not the chief: the chief (worker 0) writes the model")
        return
    saved = result.save(out, history=history, base=str(path))
    csv_path, report_path = saved.history_csv, saved.report
    stage_rows = [s.row() for s in result.stages]
    if len(stage_rows) > 1 or options.unfreeze == "gradual" or options.lora is not None:
        _render_stage_table(stage_rows, params=options.lora is not None)
    metrics = {
        k: round(v, 6)
        for k, v in result.metrics.items()
        if k not in ("stage", "epoch", "stage_epoch", "seconds")
    }
    rec = record.make_record(
        "finetune",
        upstream,
        drop=(
            *record.MODEL_BOUND_FIELDS,
            *record.AUGMENT_FIELDS,
            "views",
            *(("model",) if adapters_only else ()),
        ),
        model=None if adapters_only else out,
        adapters=str(out.resolve()) if adapters_only else None,
        lora=result.lora,
        mixed_precision=mixed_precision,
        cut=result.transfer.cut,
        frozen=[n for n in result.transfer.reused if not _trainable(result.model, n)],
        metrics=metrics,
        history=str(csv_path),
        report=str(report_path),
        stages=stage_rows,
        used_cache=result.used_cache,
        data=str(data) if data else None,
        **record.augment_fields(options.augment, result.options.image_shape, options.seed),
        config=str(Path(config).resolve()) if config is not None else None,
        from_config=taken or None,
    )

    def human():
        report.console().print(
            f"wrote {out}  ({'trained from the cache' if result.used_cache else 'trained through the reused layers'})"
        )
        if result.lora:
            info = result.lora
            share = info["trainable_params"] / max(1, info["full_finetune_params"])
            report.console().print(
                f"  LoRA rank {info['rank']} on {', '.join(info['layers'])}: trained "
                f"{info['trainable_params']:,} parameters, {share:.1%} of full fine-tuning's "
                f"{info['full_finetune_params']:,}"
            )
        report.console().print(
            "  " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        )
        report.console().print(f"  history: {csv_path}")

    emit_record(rec, json_flag, human)


def _apply_config(ctx: typer.Context, path: Path, options) -> list[str]:
    """Set the options of the file at `path` that were not typed on the command line."""
    from reuse.training.config import apply_config, read_config

    values = read_config(path)
    given = {name for name in ctx.params if _typed(ctx, name)}
    return apply_config(options, values, given)


def _typed(ctx: typer.Context, name: str) -> bool:
    # By the source's name: Typer vendors Click in newer releases, so no Click import here.
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", "") in ("COMMANDLINE", "ENVIRONMENT")


def _trainable(model, name) -> bool:
    from reuse.surgery.layer_tree import find

    return bool(find(model, name).layer.trainable)


def _learning_rate(text: str | None, upstream: dict | None) -> float | None:
    from reuse.core.errors import UsageError

    if text is None:
        return None
    if text in ("from-record", "record", "suggested"):
        if not upstream or upstream.get("lr") is None:
            raise UsageError(
                "--lr from-record needs a record with a suggested lr on stdin",
                "pipe `reuse lr-find ... --json` into finetune, or give a number",
            )
        return float(upstream["lr"])
    try:
        return float(text)
    except ValueError:
        raise UsageError(
            f"--lr must be a number or 'from-record'. Received: {text!r}", "e.g. --lr 3e-4"
        ) from None


def compact_layers(trainable: str) -> str:
    """A stage's trainable layers, shortened for its table row: a run of three or more names
    that differ only in a consecutive number is written first..last.

    >>> compact_layers("hidden5, hidden4, hidden3, hidden2")
    'hidden5..hidden2'
    >>> compact_layers("hidden4, hidden3")
    'hidden4, hidden3'
    """
    import re

    names = trainable.split(", ")
    parts = [re.fullmatch(r"(.*?)(\d+)", name) for name in names]
    if len(names) >= 3 and all(parts) and len({m.group(1) for m in parts}) == 1:
        numbers = [int(m.group(2)) for m in parts]
        steps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
        if steps in ({1}, {-1}):
            return f"{names[0]}..{names[-1]}"
    return trainable


def _render_stage_table(rows: list[dict], *, params: bool = False) -> None:
    """The stage table on stderr, narrow enough for 80 columns with the usual layer names;
    `params` adds the parameters each stage trained (shown with --lora)."""
    from rich.table import Table

    from reuse.core import report

    # One monitor for every stage (the usual case) goes in the title, keeping the rows narrow.
    monitors = {r["monitor"] for r in rows}
    shared = monitors.pop() if len(monitors) == 1 else None
    title = f"stages (best: lowest {shared}; time in seconds)" if shared else "stages"
    table = Table(title=title, title_justify="left", pad_edge=False)
    columns = ("stage", "trainable", "tap", "epochs", "best", "lr", "params", "time", "kept")
    for col in [c for c in columns if params or c != "params"]:
        table.add_column(
            col,
            justify="right"
            if col in ("stage", "epochs", "best", "lr", "params", "time")
            else "left",
        )
    for r in rows:
        best = (
            ""
            if r["best"] is None
            else f"{r['best']:.4f}" + ("" if shared else f" ({r['monitor']})")
        )
        table.add_row(
            str(r["stage"]),
            compact_layers(r["trainable"]),
            r["tap"],
            str(r["epochs"]),
            best,
            f"{r['lr']:.3g}",
            *([] if not params else ["" if r.get("params") is None else f"{r['params']:,}"]),
            f"{r['seconds']:.1f}",
            "yes" if r["kept"] else "no",
        )
    report.render(table)
