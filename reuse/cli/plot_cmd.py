"""`reuse plot`: training curves from one or more `finetune` histories, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli.common import JsonOpt, command, emit_record


@command
def plot_command(
    histories: Annotated[
        list[Path] | None,
        typer.Argument(
            help="History files (.csv or .json) from `reuse finetune`. Omit them to plot the history in the piped record.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="The PNG to write. Default: the first history's name with .png."
        ),
    ] = None,
    smooth: Annotated[
        int | None,
        typer.Option(
            "--smooth", help="Moving-average window in epochs (the raw curve stays, faint)."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Curves of the second panel (repeatable). Default: accuracy-like columns.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    json_flag: JsonOpt = False,
) -> None:
    """Plot training and validation curves; several histories at once compare runs.

    Stage boundaries of gradual unfreezing are dotted vertical lines; the learning rate is on
    a second, logarithmic axis.

    Examples:

        reuse plot tuned.history.csv -o curve.png --smooth 3

        reuse plot adam.history.csv nesterov.history.csv -o compare.png

        reuse finetune base.keras --data train.npz --unfreeze gradual | reuse plot -o stages.png
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.extras import require
    from reuse.guide.plots import plot_history

    require("matplotlib", "reuse plot")
    upstream = None
    if not histories:
        first, upstream = record.resolve_input(None, key="history")
        histories = [Path(first)]
    out = output or histories[0].with_name(
        histories[0].name.removesuffix(".csv").removesuffix(".json") + ".png"
    )
    check_output_path(out, list(histories))
    written = plot_history(
        histories, out, smooth=smooth, metrics=list(metric) if metric else None, title=title
    )
    rec = record.make_record(
        "plot", upstream, plot=str(Path(written).resolve()), histories=[str(h) for h in histories]
    )
    emit_record(rec, json_flag, lambda: report.console().print(f"wrote {written}"))
