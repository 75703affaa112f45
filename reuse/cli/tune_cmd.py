"""`reuse tune`: the coarse-to-fine search of learning rate and weight decay (and more), on
Optuna; the library (`reuse.tune`) does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli import training_options as T
from reuse.cli.common import JsonOpt, ModelArg, SeedOpt, UnsafeOpt, command, emit_record
from reuse.cli.training_options import (
    CutOpt,
    FeaturesOpt,
    HeadOpt,
    LossOpt,
    OptimizerOpt,
    UnfreezeOpt,
)
from reuse.tune.space import SPACE_HELP


@command
def tune_command(
    model: ModelArg = None,
    data: D.DataOpt = None,
    val: D.ValOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the best configuration (JSON, for `reuse finetune --config`). "
            "Default: <model>.best.json",
        ),
    ] = None,
    trials: Annotated[
        int,
        typer.Option("--trials", help="Coarse trials, counted over every process of the study."),
    ] = 20,
    coarse_epochs: Annotated[
        int, typer.Option("--coarse-epochs", help="Epochs of each coarse trial (the guide: 1-5).")
    ] = 3,
    fine: Annotated[
        int,
        typer.Option(
            "--fine", help="How many of the best coarse configurations train longer (0: none)."
        ),
    ] = 3,
    fine_epochs: Annotated[
        int,
        typer.Option(
            "--fine-epochs", help="Epochs of each fine trial, with early stopping (10-20)."
        ),
    ] = 20,
    patience: Annotated[
        int, typer.Option("--patience", help="Early-stopping patience of the fine trials.")
    ] = 5,
    space: Annotated[
        list[str] | None, typer.Option("--space", metavar="NAME=VALUES", help=SPACE_HELP)
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The validation metric that chooses. Default: val_accuracy for classification, "
            "val_loss otherwise.",
            show_default=False,
        ),
    ] = None,
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner",
            help="Stop hopeless coarse trials after an epoch: median (below the median of the "
            "trials so far), hyperband, or none.",
        ),
    ] = "median",
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Database URL of the study, shared by parallel processes and resumed runs, e.g. "
            "sqlite:///study.db. Default: sqlite:///<output>.study.db beside the output.",
            show_default=False,
        ),
    ] = None,
    study_name: Annotated[
        str, typer.Option("--study-name", help="Name of the study in the storage.")
    ] = "reuse-tune",
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write the search to this PNG: the validation metric against the learning "
            "rate, coloured by weight decay.",
        ),
    ] = None,
    features: FeaturesOpt = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Train every trial through the reused layers (no feature cache, none piped in).",
        ),
    ] = False,
    cut: CutOpt = None,
    head: HeadOpt = "auto",
    loss: LossOpt = None,
    optimizer: OptimizerOpt = "adam",
    unfreeze: UnfreezeOpt = "none",
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Rows per training step (default 32).")
    ] = None,
    augment: T.AugmentOpt = None,
    image_shape: T.ImageShapeOpt = None,
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
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Search the learning rate and weight decay (and --space) by coarse-to-fine trials.

    Steps 4 and 5 of the practical guide: lr-find's suggestion centres the learning rate;
    many short coarse trials (hopeless ones pruned after an epoch) try rates near it with
    weight decays 1e-4, 1e-5 and 0; the best few train longer. Validation data chooses; test
    data is never read. The study lives in a database: run the command again to resume it,
    or start it in several processes to share the trials. Writes the best configuration for
    `reuse finetune --config`.

    Examples:

        reuse tune base.keras --data train.npz --val valid.npz -o best.json

        reuse tune base.keras --data train.npz --val valid.npz --trials 30 --space dropout=0..0.5 --space unfreeze=0,1,2 --plot search.png

        reuse tune base.keras --data train.npz --val valid.npz --storage sqlite:///study.db & reuse tune base.keras --data train.npz --val valid.npz --storage sqlite:///study.db

        reuse finetune base.keras --data train.npz --val valid.npz --config best.json -o tuned.keras
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.naming import default_output
    from reuse.training.options import FinetuneOptions, parse_image_shape
    from reuse.tune import study as studies
    from reuse.tune.search import TuneOptions, tune

    path, upstream = record.resolve_input(model)
    out = Path(output) if output else default_output(path, "best", ".json")
    D.require_val(val)
    check_output_path(out, [path, data, val, features])
    if plot is not None and plot.suffix.lower() != ".png":
        from reuse.core.errors import UsageError

        raise UsageError(
            f"--plot writes a PNG. Received: --plot {plot}",
            f"use --plot {plot.with_suffix('.png').name}",
        )
    options = TuneOptions(
        trials=trials,
        coarse_epochs=coarse_epochs,
        fine=fine,
        fine_epochs=fine_epochs,
        patience=patience,
        metric=metric,
        pruner=pruner,
        space=tuple(space or ()),
        storage=storage,
        study_name=study_name,
        use_cache=not no_cache,
        seed=seed,
    )
    base = FinetuneOptions(
        cut=cut,
        head=head,
        loss=loss,
        optimizer=optimizer,
        unfreeze=unfreeze,
        batch_size=batch_size,
        augment=augment,
        # parsed here: best.json keeps base's values, and `finetune --config` reads a list
        image_shape=parse_image_shape(image_shape) if image_shape else None,
    )
    options.check()
    from dataclasses import replace

    replace(base).check()
    # The extras, checked before any work: one Error line naming the one to install.
    if plot is not None:
        check_output_path(plot, [path, data, val, features], flag="--plot")
        import matplotlib  # noqa: F401 - keras-reuse[plot]
    studies.require_optuna()  # keras-reuse[tune]
    opts = D.data_options_from(locals())
    if val is not None:
        train_set = opts.load()
        val_set = replace(opts, per_class=None, limit=None).load(val)
    elif val_split:
        train_set, val_set = replace(opts, val_split=val_split, seed=seed or 0).load_split()
    else:
        from reuse.core.errors import UsageError

        raise UsageError(
            "tune needs validation data: every trial is judged on the same rows",
            "pass --val VALID (or --val-split F to hold out part of --data)",
        )
    if features is None and not no_cache and upstream and upstream.get("features"):
        features = Path(upstream["features"])
    restore = _signals_interrupt()
    try:
        result = tune(
            path,
            train_set,
            val_set,
            output=out,
            options=options,
            base=base,
            features=features,
            unsafe=unsafe,
        )
    finally:
        restore()
    result.write(out)
    render_trials(result)
    if plot is not None:
        from reuse.guide.plots import plot_search

        plot_search([r.to_dict() for r in result.rows], result.metric, plot)
    rec = record.make_record(
        "tune",
        upstream,
        model=path,
        config=str(out.resolve()),
        best=result.config,
        metric=result.metric,
        value=result.best.value,
        trials=[r.to_dict() for r in result.rows],
        storage=result.storage,
        study=result.study,
        lr_suggestions=result.lr_suggestions or None,
        plot=str(plot.resolve()) if plot else None,
        seconds=round(result.seconds, 2),
        data=str(data) if data else None,
    )

    def human():
        report.console().print(
            f"wrote {out}  (best {result.metric} {result.best.value:.4f}, {result.best.phase} "
            f"trial {result.best.number}; use it: reuse finetune ... --config {out})"
        )
        if plot:
            report.console().print(f"wrote {plot}")

    emit_record(rec, json_flag, human)


def render_trials(result) -> None:
    """The table of trials on stderr: one row per trial, its options, value and cost."""
    from rich import box
    from rich.table import Table

    from reuse.core import report

    extra = [n for n in ("dropout", "cut", "unfreeze", "optimizer") if n in result.searched]
    better = "higher" if result.direction == "maximize" else "lower"
    table = Table(
        title=f"trials of study {result.study!r}: value = {result.metric} ({better} is better), "
        "ep = epochs, s = seconds, from = the cached tap a trial trained from, or input",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    numeric = ("#", "lr", "wd", "dropout", "ep", "value", "s")
    for col in ("phase", "#", "state", "lr", "wd", *extra, "ep", "value", "s", "from", "note"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=col != "note")
    for r in result.rows:
        c = r.config
        table.add_row(
            r.phase,
            str(r.number),
            "done" if r.state == "complete" else r.state,
            f"{c['lr']:.3g}" if c.get("lr") is not None else "",
            f"{c.get('l2', 0.0) or 0.0:g}",
            *(f"{c[n]:.3g}" if isinstance(c.get(n), float) else str(c.get(n, "")) for n in extra),
            "" if r.epochs is None else str(r.epochs),
            "" if r.value is None else f"{r.value:.4f}",
            "" if r.seconds is None else f"{r.seconds:.1f}",
            r.tap or "",
            ", ".join(x for x in ("best" if r is result.best else "", r.note) if x),
        )
    report.render(table, min_width=140)


def _signals_interrupt():
    """Ctrl-C and a polite kill (SIGTERM, as job schedulers send) stop the search at the end
    of the running epoch (`reuse.tune.study.request_stop`); a second one stops it at once. The
    running trial is marked interrupted and queued again for the next start. Returns a function
    that puts the previous handlers back."""
    import signal
    import sys
    import threading

    from reuse.tune.study import request_stop, stop_requested

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        if stop_requested():
            raise KeyboardInterrupt
        request_stop()
        sys.stderr.write(
            "stopping at the end of this epoch (the trial is queued again); "
            "press Ctrl-C again to stop at once\n"
        )

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, interrupt)

    def restore():
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
