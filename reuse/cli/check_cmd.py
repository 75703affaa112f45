"""`reuse check`: steps 1-2 of the practical tuning guide, plus gradients and activations."""

from __future__ import annotations

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
    BatchOpt,
    CutOpt,
    FeaturesOpt,
    HeadOpt,
    LossOpt,
    NoCacheOpt,
    OptimizerOpt,
    UnfreezeOpt,
)

_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


@command
def check_command(
    model: ModelArg = None,
    data: D.DataOpt = None,
    subset: Annotated[
        int, typer.Option("--subset", help="Rows of the tiny subset the model must overfit.")
    ] = 20,
    steps: Annotated[
        int, typer.Option("--steps", help="Full-batch steps the overfit check may take.")
    ] = 300,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="Learning rate of the overfit check. Default: 10x the optimizer's usual one.",
        ),
    ] = None,
    features: FeaturesOpt = None,
    no_cache: NoCacheOpt = False,
    cut: CutOpt = None,
    head: HeadOpt = "auto",
    loss: LossOpt = None,
    optimizer: OptimizerOpt = "adam",
    unfreeze: UnfreezeOpt = "none",
    batch_size: BatchOpt = 128,
    labels: D.LabelsOpt = None,
    x_key: D.XKeyOpt = None,
    y_key: D.YKeyOpt = None,
    label_col: D.LabelColOpt = None,
    image_size: D.ImageSizeOpt = None,
    split: D.SplitOpt = None,
    classes: D.ClassesOpt = None,
    per_class: D.PerClassOpt = None,
    limit: D.LimitOpt = None,
    seed: SeedOpt = None,
    augment: T.GuideAugmentOpt = None,
    image_shape: T.ImageShapeOpt = None,
    json_flag: JsonOpt = False,
    output_key: OutputKeyOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Sanity-check a model before a long run; each check passes, warns or fails, with a reason.

    initial_loss: the fresh head's loss vs ln(C) for C classes, regularization off.
    overfit_tiny: the loss on --subset rows must get close to zero.
    gradients: per-layer gradient norms, flagging vanishing (< 1e-7 of the weight norm) and
    exploding (> 1e3) ones. activations: dead ReLU units, saturated sigmoid/tanh units.
    Exit code 0 when nothing fails (warnings included), 3 when a check fails.

    Examples:

        reuse check base.keras --data train.npz

        reuse check base.keras --data train.npz --cut hidden3 --subset 30 && reuse finetune base.keras --data train.npz --cut hidden3
    """
    from reuse.core import exit_codes, record, report
    from reuse.guide.check import check, check_arguments
    from reuse.training.options import FinetuneOptions
    from reuse.training.setup import prepare_run

    check_arguments(subset, steps)
    path, upstream = record.resolve_input(model)
    opts = D.data_options_from(locals())
    options = FinetuneOptions(
        cut=cut,
        head=head,
        loss=loss,
        optimizer=optimizer,
        lr=lr,
        unfreeze=unfreeze,
        seed=seed,
        augment=augment,
        image_shape=image_shape,
    )
    options.check()
    setup = prepare_run(
        path,
        opts,
        upstream=upstream,
        features=features,
        no_cache=no_cache,
        cut=cut,
        unsafe=unsafe,
        output_key=output_key,
        what="data to check with",
    )
    options.cut = setup.cut
    results = check(
        setup.model,
        setup.data,
        options,
        features=setup.features,
        subset=subset,
        steps=steps,
        batch=batch_size,
    )
    failed = [r.name for r in results if r.status == "fail"]
    rec = record.make_record(
        "check",
        upstream,
        drop=record.AUGMENT_FIELDS,
        **record.augment_fields(options.augment, options.image_shape, options.seed),
        model=path,
        checks=[r.row() for r in results],
        passed=not failed,
        data=str(data) if data else None,
    )

    def human():
        from rich.table import Table

        table = Table(title=f"checks of {path}", title_justify="left")
        for col in ("check", "status", "reason"):
            table.add_column(col, overflow="fold")
        for r in results:
            table.add_row(r.name, f"[{_STYLE[r.status]}]{r.status}[/]", r.reason)
        report.console().print(table)

    emit_record(rec, json_flag, human)
    if failed:
        report.warn(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        raise typer.Exit(exit_codes.CHECK_FAILED)
