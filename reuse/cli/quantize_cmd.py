"""`reuse quantize`: int8 weight quantization through Keras, with size and accuracy before and
after (the library does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli.common import JsonOpt, ModelArg, UnsafeOpt, command, emit_record, seed_option

SeedOpt = seed_option("the rows of --data that --limit and --per-class pick")


@command
def quantize_command(
    model: ModelArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Where to write the quantized model. Default: <model>.int8.keras"
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="DATA",
            help="Data to run before and after quantizing: the outputs are compared, and with "
            "labels the accuracy too.",
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", metavar="N", help="Rows per forward pass (memory, not results)."
        ),
    ] = 256,
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
    """Quantize a model's Dense, EinsumDense and Embedding weights to int8 (Keras'
    model.quantize), save it and load it back; report the file size and, with --data, the
    accuracy before and after.

    Examples:

        reuse quantize tuned.keras -o tuned.int8.keras --data test.npz

        reuse finetune base.keras --data train.npz | reuse quantize --data test.npz
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.naming import default_output
    from reuse.formats import model_io
    from reuse.inference.quantize import quantize_model

    path, upstream = record.resolve_input(model)
    out = Path(output) if output else default_output(path, "int8")
    check_output_path(out, [path, data])
    model_io.check_model_output(out)
    dataset = D.data_options_from(locals()).load() if data else None
    result = quantize_model(
        model_io.load_model(path, unsafe=unsafe),
        out,
        source=path,
        data=dataset,
        batch_size=batch_size,
    )
    metrics = {}
    for when, ev in (("before", result.before), ("after", result.after)):
        if ev is not None:
            metrics.update({f"{k}_{when}": v for k, v in ev.metrics().items() if k != "rows"})
    ratio = result.bytes_after / max(1, result.bytes_before)
    report.info(
        f"quantized {len(result.layers)} layer(s) to int8: {result.bytes_before:,} -> "
        f"{result.bytes_after:,} bytes ({ratio:.0%}); reloaded from {out}"
    )
    if "accuracy_before" in metrics:
        report.info(f"accuracy {metrics['accuracy_before']:.4f} -> {metrics['accuracy_after']:.4f}")
    rec = record.make_record(
        "quantize",
        upstream,
        drop=(*record.MODEL_BOUND_FIELDS, "stages", "history", "report", "used_cache"),
        model=out,
        source=str(path),
        quantized=result.layers,
        bytes_before=result.bytes_before,
        bytes_after=result.bytes_after,
        metrics=metrics or None,
        max_abs_diff=result.max_abs_diff,
        data=data,
    )
    emit_record(rec, json_flag, human=lambda: typer.echo(f"{out}  ({result.bytes_after:,} bytes)"))
