"""`reuse sparsify`: zero the smallest kernel weights and write a sparse model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli.common import JsonOpt, ModelArg, UnsafeOpt, command, emit_record, seed_option
from reuse.cli.selector_options import ExceptTopOpt, FromOpt, IndexOpt, LayersOpt, ToOpt, UptoOpt

SeedOpt = seed_option("the rows of --data that --limit and --per-class pick")


@command
def sparsify_command(
    model: ModelArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the sparse model (.keras). Default: <model>.sparse.keras",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Zero every kernel weight with |w| < T.")
    ] = None,
    sparsity: Annotated[
        float | None,
        typer.Option(
            "--sparsity", help="Zero this fraction of the kernel weights (the smallest), e.g. 0.9."
        ),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="layer: each kernel reaches --sparsity; global: the smallest weights over all selected kernels.",
        ),
    ] = "layer",
    layers: LayersOpt = None,
    upto: UptoOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    index: IndexOpt = None,
    except_top: ExceptTopOpt = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Overwrite the input model.")
    ] = False,
    data: D.DataOpt = None,
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
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Zero the smallest-magnitude kernel weights (magnitude pruning) and write a new model.

    With --data, the loss and accuracy before and after are reported. `reuse inspect
    --weights` shows the zeros. (FTRL with L1 gives sparse weights while training:
    `reuse finetune --optimizer ftrl:l1=0.01`.)

    Examples:

        reuse sparsify tuned.keras --sparsity 0.9 -o sparse.keras --data test.npz

        reuse sparsify tuned.keras --threshold 1e-3 --layers 'hidden[345]|head.*' -o sparse.keras
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.naming import default_output
    from reuse.formats import model_io
    from reuse.guide.sparsity import check_arguments, sparsify

    check_arguments(threshold, sparsity, scope)
    path, upstream = record.resolve_input(model)
    out = Path(output) if output else default_output(path, "sparse")
    check_output_path(out, [path, data], in_place=in_place)
    model_io.check_model_output(out)
    dataset = None
    if data is not None:
        dataset = D.data_options_from(locals()).load()
    net = model_io.load_model(path, unsafe=unsafe)
    before = _evaluate(net, dataset)
    result = sparsify(
        net,
        threshold=threshold,
        sparsity=sparsity,
        scope=scope,
        layers=layers,
        selectors={
            "upto": upto,
            "from_": from_,
            "to": to,
            "index": index,
            "except_top": except_top,
        },
    )
    after = _evaluate(net, dataset)
    model_io.save_model(net, out)
    summary = {
        "sparsity": round(result.sparsity, 6),
        "zeros": result.zeros,
        "size": result.size,
        "scope": scope,
    }
    metrics = {f"{k}_before": v for k, v in (before or {}).items()} | {
        k: v for k, v in (after or {}).items()
    }
    rec = record.make_record(
        "sparsify",
        upstream,
        drop=record.MODEL_BOUND_FIELDS,
        model=out,
        sparsity=summary,
        layers=[
            {k: r[k] for k in ("layer", "weight", "size", "zeros", "sparsity")} for r in result.rows
        ],
        metrics=metrics or None,
        data=str(data) if data else None,
    )
    _render(result, before, after)

    def human():
        report.console().print(
            f"wrote {out}  ({result.zeros}/{result.size} kernel weights are zero: {result.sparsity:.1%})"
        )

    emit_record(rec, json_flag, human)


def _evaluate(model, dataset) -> dict | None:
    if dataset is None:
        return None
    from reuse.inference.evaluate import evaluate

    ev = evaluate(model, dataset)
    out = {"loss": round(ev.loss, 6)}
    if ev.accuracy is not None:
        out["accuracy"] = round(ev.accuracy, 6)
    return out


def _render(result, before, after) -> None:
    from rich.table import Table

    from reuse.core import report

    how = (
        f"|w| < {result.threshold:g}"
        if result.threshold is not None
        else f"--sparsity {result.target:g}, {result.scope} scope"
    )
    table = Table(title=f"sparsity per kernel ({how})", title_justify="left")
    for col in ("layer", "weight", "size", "zeros before", "zeros", "sparsity"):
        table.add_column(col, justify="left" if col in ("layer", "weight") else "right")
    for r in result.rows:
        table.add_row(
            r["layer"],
            r["weight"],
            str(r["size"]),
            str(r["zeros_before"]),
            str(r["zeros"]),
            f"{r['sparsity']:.1%}",
        )
    table.add_row(
        "total",
        "",
        str(result.size),
        str(sum(r["zeros_before"] for r in result.rows)),
        str(result.zeros),
        f"{result.sparsity:.1%}",
    )
    report.render(table)
    if before is not None:
        parts = [
            f"{k} {before[k]:.4f} → {after[k]:.4f}" for k in ("loss", "accuracy") if k in before
        ]
        report.info("on --data: " + "  ".join(parts))
