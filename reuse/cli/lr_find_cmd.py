"""`reuse lr-find`: the learning-rate range test, on the model as `finetune` would train it."""

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
    BatchOpt,
    CutOpt,
    FeaturesOpt,
    HeadOpt,
    LossOpt,
    NoCacheOpt,
    OptimizerOpt,
    UnfreezeOpt,
)


@command
def lr_find_command(
    model: ModelArg = None,
    data: D.DataOpt = None,
    start: Annotated[
        float, typer.Option("--start", help="First learning rate of the sweep.")
    ] = 1e-7,
    end: Annotated[float, typer.Option("--end", help="Last learning rate of the sweep.")] = 10.0,
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            help="Training steps (one batch each), spaced exponentially from --start to --end.",
        ),
    ] = 100,
    stop_factor: Annotated[
        float,
        typer.Option(
            "--stop-factor", help="Stop once the smoothed loss exceeds this multiple of its best."
        ),
    ] = 4.0,
    smooth: Annotated[
        float,
        typer.Option(
            "--smooth", help="Exponential moving-average factor of the smoothed loss, in [0, 1)."
        ),
    ] = 0.98,
    rule: Annotated[
        str,
        typer.Option(
            "--rule",
            help="Which suggestion goes in the record: valley (fastai's default: inside the longest descent) or steepest (where the loss falls fastest).",
        ),
    ] = "valley",
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the loss-vs-lr curve to this PNG.")
    ] = None,
    features: FeaturesOpt = None,
    no_cache: NoCacheOpt = False,
    cut: CutOpt = None,
    head: HeadOpt = "auto",
    loss: LossOpt = None,
    optimizer: OptimizerOpt = "adam",
    l1: Annotated[
        float, typer.Option("--l1", help="L1 penalty on the trained kernels, as in finetune.")
    ] = 0.0,
    l2: Annotated[
        float, typer.Option("--l2", help="L2 penalty on the trained kernels, as in finetune.")
    ] = 0.0,
    dropout: Annotated[
        float, typer.Option("--dropout", help="Dropout rate before the head, as in finetune.")
    ] = 0.0,
    unfreeze: UnfreezeOpt = "none",
    batch_size: BatchOpt = 32,
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
    """Sweep the learning rate exponentially and suggest one (the LR range test).

    Trains the model as `finetune` would (same cut, new head, frozen layers, optimizer; from
    the feature cache when one is given), one batch per step, and stops once the loss blows
    up. The weights are left as they were. The record carries the suggestion as `lr`, so
    `finetune --lr from-record` uses it.

    Examples:

        reuse lr-find base.keras --data train.npz --plot lr.png

        reuse lr-find base.keras --data train.npz --optimizer nesterov | reuse finetune --data train.npz --optimizer nesterov --lr from-record
    """
    from reuse.core import record, report
    from reuse.core.errors import UsageError
    from reuse.guide.lr_find import lr_find
    from reuse.training.options import FinetuneOptions
    from reuse.training.setup import prepare_run

    path, upstream = record.resolve_input(model)
    if plot is not None and plot.suffix.lower() != ".png":
        raise UsageError(
            f"--plot writes a PNG. Received: --plot {plot}",
            f"use --plot {plot.with_suffix('.png').name}",
        )
    if plot is not None:
        from reuse.core.atomic import check_output_path
        from reuse.core.extras import require

        check_output_path(plot, [path, data], flag="--plot")  # before the sweep, not after it
        require("matplotlib", "--plot")
    from reuse.guide.lr_find import check_arguments

    check_arguments(start, end, steps, stop_factor, smooth, rule)
    opts = D.data_options_from(locals())
    options = FinetuneOptions(
        cut=cut,
        head=head,
        loss=loss,
        optimizer=optimizer,
        l1=l1,
        l2=l2,
        dropout=dropout,
        unfreeze=unfreeze,
        batch_size=batch_size,
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
    )
    options.cut = setup.cut
    result = lr_find(
        setup.model,
        setup.data,
        features=setup.features,
        options=options,
        start=start,
        end=end,
        steps=steps,
        stop_factor=stop_factor,
        smooth=smooth,
        rule=rule,
    )
    if plot is not None:
        from reuse.guide.plots import plot_lr_find

        plot_lr_find(result, plot)
    _show_chart(result)
    if result.flat:
        from reuse.core import report
        from reuse.guide.lr_find import FLAT_FALL

        start, low = result.levels
        within = f", within batch noise ({result.noise:.1%})" if result.fall >= FLAT_FALL else ""
        report.info(
            f"note: the loss fell only {result.fall:.1%} over the sweep ({start:.3g} to "
            f"{low:.3g}, means of {result.window} steps){within}, so the suggestion reads "
            "noise, not a valley; raise --end, or train more of the model (a lower --cut)"
        )
    rec = record.make_record(
        "lr-find",
        upstream,
        drop=record.AUGMENT_FIELDS,
        **record.augment_fields(options.augment, options.image_shape, options.seed),
        model=path,
        lr=result.suggestion,
        lr_rule=result.rule,
        lr_suggestions=result.suggestions,
        lr_plot=str(Path(plot).resolve()) if plot else None,
        cut_finetune=setup.cut,
        features=str(features) if features else None,
        data=str(data) if data else None,
    )

    def human():
        if plot:
            report.console().print(f"wrote {plot}")

    emit_record(rec, json_flag, human)


def _show_chart(result) -> None:
    from rich.text import Text

    from reuse.core import report
    from reuse.guide.plots import text_chart

    lines = text_chart(result.lrs, result.smoothed, mark=result.suggestion)
    stop = (
        "stopped: the loss exceeded --stop-factor x its best"
        if result.stopped_early
        else "reached --end"
    )
    report.render(
        Text(
            "\n".join(
                [
                    f"smoothed loss vs learning rate ({len(result.lrs)} steps, {stop}; │ = suggestion)",
                    *lines,
                    "  "
                    + "   ".join(f"{rule}: {lr:.3g}" for rule, lr in result.suggestions.items())
                    + f"   lowest loss at {result.best_lr:.3g}",
                    f"suggested lr {result.suggestion:.3g} (rule: {result.rule}"
                    + (f"; trained from the cached tap {result.tap}" if result.tap else "")
                    + ")",
                ]
            )
        )
    )
