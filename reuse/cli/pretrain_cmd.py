"""`reuse pretrain autoencoder` / `reuse pretrain pairs`: make a base when none fits the task.

A Typer sub-app with one command per way to pretrain; both parse the same training options,
call `reuse.pretrain`, write the base (.keras) with its history and report, and print the
pipeline record, so `reuse pretrain ... | reuse freeze ... | reuse cache-features ... | reuse
finetune ...` chains. The record's `cut_finetune` is the base's top layer, so a piped
`finetune` keeps the whole base (not all but its top layer, as for a classifier).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli.common import JsonOpt, command, emit_record, seed_option
from reuse.cli.training_options import (
    OPTIMIZER_HELP,
    SCHEDULE_HELP,
    PretrainAugmentOpt,
    PretrainImageShapeOpt,
)

app = typer.Typer(
    name="pretrain",
    help="Pretrain a base when none fits. An autoencoder on unlabeled data, or a siamese "
    "network on 'same class?' pairs; either writes the encoder as a base model for "
    "freeze | cache-features | finetune.",
    short_help="Pretrain a base when none fits",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="Where to write the base (.keras). Default: <data name>.<autoencoder|pairs>.keras "
        "in the current folder.",
        show_default=False,
    ),
]
LayersOpt = Annotated[
    str,
    typer.Option(
        "--layers",
        metavar="N[,N...]",
        help="Units per encoder layer (Dense), or filters per conv block (Conv 3x3 + max-pool 2), "
        "bottom first.",
    ),
]
ArchOpt = Annotated[
    str,
    typer.Option(
        "--arch",
        metavar="dense|conv|auto",
        help="dense, conv, or auto: conv when --image-shape is given or the rows are H,W,C images.",
    ),
]
ActivationOpt = Annotated[
    str,
    typer.Option(
        "--activation", metavar="NAME", help="Activation of the encoder layers (He-normal init)."
    ),
]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Epochs (per level with --mode stacked).")]
PairsEpochsOpt = Annotated[int, typer.Option("--epochs", help="Epochs.")]
AutoencoderSeedOpt = seed_option(
    "the rows --limit picks, the --val-split rows, the data order, the new layers' "
    "initialization, the noise and dropout, the augmentation"
)
PairsSeedOpt = seed_option(
    "the rows --limit and --per-class pick, the --val-split rows, the pairs, the data order "
    "and the new layers' initialization, the augmentation"
)
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Rows (or pairs) per training step.")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help=OPTIMIZER_HELP)]
LrOpt = Annotated[
    float | None,
    typer.Option(
        "--lr", metavar="F", help="Learning rate. Default: the optimizer's usual one (adam 1e-3)."
    ),
]
ScheduleOpt = Annotated[str | None, typer.Option("--schedule", help=SCHEDULE_HELP)]
EarlyStoppingOpt = Annotated[
    int | None,
    typer.Option(
        "--early-stopping",
        help="Stop after N epochs without improvement (of val_loss with validation data, "
        "else loss) and keep the best weights.",
    ),
]
ClipNormOpt = Annotated[
    float | None, typer.Option("--clip-norm", help="Clip each gradient to this norm.")
]
HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Write the per-epoch history as PATH.csv and PATH.json. Default: next to the base.",
    ),
]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint-dir", help="Write a checkpoint after every epoch into DIR."),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run checkpointed in --checkpoint-dir (same options required): same "
        "epoch, level, optimizer state and schedule position.",
    ),
]


@command
def autoencoder_command(
    data: D.DataOpt = None,
    val: D.ValOpt = None,
    output: OutputOpt = None,
    layers: LayersOpt = "300,100",
    arch: ArchOpt = "auto",
    activation: ActivationOpt = "elu",
    image_shape: PretrainImageShapeOpt = None,
    augment: PretrainAugmentOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="end-to-end|stacked",
            help="end-to-end: train the whole autoencoder at once (the default: one run, every "
            "layer serves the final reconstruction); stacked: greedy layer-wise, one shallow "
            "autoencoder per layer on the codes of the one below (for deep encoders that do not "
            "train end-to-end).",
        ),
    ] = "end-to-end",
    noise: Annotated[
        float,
        typer.Option("--noise", help="Denoising: std of Gaussian noise added to the inputs."),
    ] = 0.0,
    dropout: Annotated[
        float,
        typer.Option(
            "--dropout",
            help="Denoising: dropout rate on the inputs (0.5 gained 3 points on MNIST with 100 "
            "labels per digit; docs/pretrain.md).",
        ),
    ] = 0.0,
    sparsity: Annotated[
        float,
        typer.Option(
            "--sparsity", help="Sparse code: L1 weight on the top encoder layer's outputs."
        ),
    ] = 0.0,
    epochs: EpochsOpt = 10,
    batch_size: BatchOpt = 32,
    optimizer: OptimizerOpt = "adam",
    lr: LrOpt = None,
    schedule: ScheduleOpt = None,
    early_stopping: EarlyStoppingOpt = None,
    clip_norm: ClipNormOpt = None,
    history: HistoryOpt = None,
    checkpoint_dir: CheckpointOpt = None,
    resume: ResumeOpt = False,
    labels: D.LabelsOpt = None,
    x_key: D.XKeyOpt = None,
    label_col: D.LabelColOpt = None,
    image_size: D.ImageSizeOpt = None,
    split: D.SplitOpt = None,
    classes: D.ClassesOpt = None,
    limit: D.LimitOpt = None,
    val_split: D.ValSplitOpt = None,
    seed: AutoencoderSeedOpt = None,
    json_flag: JsonOpt = False,
) -> None:
    """Train an autoencoder on unlabeled data; write its encoder as a base model.

    Labels in the data are ignored. The encoder's top layer is the code; pipe the record on
    to freeze, cache-features and finetune (docs/pretrain.md).

    Examples:

        reuse pretrain autoencoder --data unlabeled.npz --layers 300,150 -o base.keras

        reuse pretrain autoencoder --data unlabeled.npz --layers 32,64 --image-shape 28,28,1 --noise 0.2 -o conv_base.keras

        reuse pretrain autoencoder --data unlabeled.npz --layers 300,150 --arch dense --augment digits --image-shape 28,28,1 --seed 0 -o base.keras

        reuse pretrain autoencoder --data unlabeled.npz --layers 300,150 --mode stacked --sparsity 1e-4 -o base.keras | reuse freeze --all | reuse finetune --data train.npz -o tuned.keras
    """
    _run("autoencoder", locals())


@command
def pairs_command(
    data: D.DataOpt = None,
    val: D.ValOpt = None,
    output: OutputOpt = None,
    layers: LayersOpt = "300,100",
    pairs: Annotated[
        int,
        typer.Option(
            "--pairs",
            help="Pairs to draw from --data: half of one class, half of two; seeded by --seed.",
        ),
    ] = 20000,
    combine: Annotated[
        str,
        typer.Option(
            "--combine",
            metavar="concat|absdiff",
            help="How the two towers' outputs meet: concat (Géron ch. 11 ex. 10) or absdiff |a-b|.",
        ),
    ] = "concat",
    arch: ArchOpt = "auto",
    activation: ActivationOpt = "elu",
    image_shape: PretrainImageShapeOpt = None,
    augment: PretrainAugmentOpt = None,
    epochs: PairsEpochsOpt = 10,
    batch_size: BatchOpt = 32,
    optimizer: OptimizerOpt = "adam",
    lr: LrOpt = None,
    schedule: ScheduleOpt = None,
    early_stopping: EarlyStoppingOpt = None,
    clip_norm: ClipNormOpt = None,
    history: HistoryOpt = None,
    checkpoint_dir: CheckpointOpt = None,
    resume: ResumeOpt = False,
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
    seed: PairsSeedOpt = None,
    json_flag: JsonOpt = False,
) -> None:
    """Train a siamese network on "same class?" pairs from labelled data; write its tower.

    Two copies of one tower (shared weights) read the two rows of a pair; only whether two
    labels are equal is used. The tower is the base (docs/pretrain.md).

    Examples:

        reuse pretrain pairs --data labeled.npz --layers 300,100 --pairs 50000 -o base.keras

        reuse pretrain pairs --data labeled.npz --layers 32,64 --image-shape 28,28,1 --augment digits --seed 0 -o tower.keras

        reuse pretrain pairs --data mnist/ --layers 100,100,100,100,100 --pairs 100000 --val-split 0.1 --seed 1 -o tower.keras | reuse freeze --all | reuse finetune --data few.npz -o tuned.keras
    """
    _run("pairs", locals())


def _run(kind: str, args: dict) -> None:
    """Check the options, load the data, pretrain, save, print the record."""
    from dataclasses import replace

    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.errors import UsageError
    from reuse.formats.model_io import check_model_output
    from reuse.pretrain.options import PretrainOptions

    data = args["data"]
    if data is None:
        raise UsageError("no data to pretrain on", "pass --data DATA")
    options = PretrainOptions(
        **{
            name: args[name]
            for name in (
                "layers",
                "arch",
                "activation",
                "image_shape",
                "epochs",
                "batch_size",
                "optimizer",
                "lr",
                "schedule",
                "early_stopping",
                "clip_norm",
                "seed",
                "val_split",
                "augment",
            )
        },
        **{name: args[name] for name in ("mode", "noise", "dropout", "sparsity") if name in args},
        **{name: args[name] for name in ("pairs", "combine") if name in args},
    )
    options.check()  # every value refused before the data is read
    if args["resume"]:
        from reuse.pretrain.run import require_resumable

        require_resumable(args["checkpoint_dir"], options.mode)
    out = Path(args["output"]) if args["output"] else _default_output(data, kind)
    D.require_val(args["val"])
    check_output_path(out, [data, args["val"]])
    check_model_output(out)
    if args["history"] is not None:
        check_output_path(Path(f"{args['history']}.csv"), [data], flag="--history")
    if args["checkpoint_dir"] is not None:
        from reuse.core.atomic import check_output_dir

        check_output_dir(args["checkpoint_dir"], "--checkpoint-dir")
    opts = D.data_options_from(args)
    dataset = opts.load()
    # --val keeps the class selection of --data, not its row limits (as finetune's --val).
    val_opts = replace(opts, per_class=None, limit=None)
    val_set = val_opts.load(args["val"]) if args["val"] is not None else None
    if kind == "autoencoder":
        from reuse.pretrain.autoencoder import pretrain_autoencoder as pretrain
    else:
        from reuse.pretrain.pairs import pretrain_pairs as pretrain
    result = pretrain(
        dataset,
        val=val_set,
        options=options,
        checkpoint_dir=args["checkpoint_dir"],
        resume=args["resume"],
    )
    model_path, csv_path, report_path = result.save(out, history=args["history"])
    metrics = {k: round(v, 6) for k, v in result.metrics.items()}
    rec = record.make_record(
        "pretrain",
        None,
        model=model_path,
        pretrain=kind,
        cut_finetune=result.top,
        frozen=[],
        metrics=metrics,
        history=str(csv_path),
        report=str(report_path),
        data=str(data),
        rows=result.rows,
        **record.augment_fields(options.augment, options.image_shape, options.seed),
    )

    def human():
        report.console().print(f"wrote {model_path}  ({kind} base, top layer {result.top})")
        report.console().print("  " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        report.console().print(f"  history: {csv_path}")

    emit_record(rec, args["json_flag"], human)


def _default_output(data: str, kind: str) -> Path:
    """`<data name>.<kind>.keras` in the current folder (the data's folder may be read-only)."""
    path = Path(data)
    name = path.name if path.is_dir() else path.name.split(".")[0]
    return Path(f"{name or 'data'}.{kind}.keras")


def _register() -> None:
    from reuse.cli import _keep_examples
    from reuse.cli.help_format import ReuseCommand

    app.command(
        "autoencoder",
        cls=ReuseCommand,
        short_help="Pretrain an autoencoder; its encoder is the base",
    )(_keep_examples(autoencoder_command))
    app.command(
        "pairs", cls=ReuseCommand, short_help='Pretrain a siamese tower on "same class?" pairs'
    )(_keep_examples(pairs_command))


_register()
