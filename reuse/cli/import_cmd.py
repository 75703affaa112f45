"""`reuse import-weights`: fill a Keras architecture with weights made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli.common import JsonOpt, UnsafeOpt, command, emit_record
from reuse.surgery.layer_spec import ACTIVATIONS_LINE, ALIASES_HELP, ARCH_TOKENS

SourceArg = Annotated[
    str | None,
    typer.Argument(
        help="Weights: .keras/.h5 model, .weights.h5, .npz, .safetensors, .pt/.pth/.bin, .onnx (its "
        "initializers), or a "
        "TensorFlow checkpoint prefix. Omit it (or pass -) to use the model of the record on stdin.",
        show_default=False,
    ),
]


@command
def import_weights_command(
    source: SourceArg = None,
    into: Annotated[
        str | None,
        typer.Option("--into", help="Target architecture: a .keras/.h5 model or a .json config."),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            help="Target as a layer spec with an input shape, e.g. "
            "'input:784,dense:300:relu:name=hidden1,dense:10:softmax'. Tokens: input:SHAPE (first; "
            f"784 or 28x28x1), {ARCH_TOKENS}; name=NAME on any token. {ACTIVATIONS_LINE} "
            f"{ALIASES_HELP}",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Where to write the filled model (.keras or .h5)."),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Restore only target layers whose names match this regex (full match), e.g. 'hidden[123]'.",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Rename source tensors: SRC=DST (regex, groups allowed; repeatable), or a .json/.toml file. An empty DST drops the tensor.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail unless every source weight is assigned and every target weight filled.",
        ),
    ] = False,
    skip_mismatched: Annotated[
        bool,
        typer.Option(
            "--skip-mismatched",
            help="Leave shape-mismatched weights at their initial values instead of failing.",
        ),
    ] = False,
    check: Annotated[
        str | None,
        typer.Option("--check", help="Inputs (.npy, channels-last) to compare outputs on."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference", help="Expected outputs (.npy) of the source model on the --check inputs."
        ),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Largest accepted max-abs difference for --check.")
    ] = 1e-4,
    flatten_order: Annotated[
        str,
        typer.Option(
            "--flatten-order",
            help="How a PyTorch Linear after a Flatten is reordered: auto (C·H·W rows to Keras' "
            "H·W·C, unless a Permute feeds the Flatten), nchw (always), none (never).",
        ),
    ] = "auto",
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Build a Keras model from an architecture and fill it from weights made elsewhere.

    PyTorch layouts are converted (Linear, Conv1d/2d/3d, grouped, depthwise and transposed
    convs, BatchNorm, LayerNorm, GroupNorm, PReLU, Embedding); ONNX initializers too; every
    source tensor is reported as assigned, unused or mismatched, every target weight as
    filled or left at init.

    Examples:

        reuse import-weights mlp.pt --arch 'input:784,dense:300:relu:name=fc1,dense:10:softmax:name=fc2' -o mlp.keras

        reuse import-weights old/model.ckpt --into new_arch.keras --layers 'hidden[123]' -o new.keras

        reuse import-weights net.safetensors --into arch.keras --map 'features\\.(\\d+)=conv\\1' -o net.keras --check x.npy --reference y.npy

        reuse import-weights base.keras --into arch.keras --layers 'hidden[12]' -o new.keras | reuse freeze --upto hidden2 -o frozen.keras
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.errors import UsageError, WeightImportError
    from reuse.formats.model_io import check_model_output, save_model
    from reuse.surgery.layer_spec import parse_arch_spec
    from reuse.weights.importer import import_weights

    if output is None:
        raise UsageError("no output path given", "pass -o OUT.keras")
    if (into is None) == (arch is None):
        raise UsageError(
            "give the target architecture with exactly one of --into and --arch",
            "--into ARCH.keras, or --arch 'input:784,dense:300:relu,dense:10:softmax'",
        )
    if arch is not None:
        parse_arch_spec(arch)  # a bad spec fails here, before any file is read
    if reference is not None and check is None:
        raise UsageError(
            "--reference needs --check INPUTS.npy",
            "pass the inputs the reference outputs were computed on",
        )
    if check is not None and reference is None:
        raise UsageError(
            "--check needs --reference OUTPUTS.npy",
            "save the source model's outputs on the same inputs",
        )
    source_path, _ = record.resolve_input(source)
    out = check_output_path(output, [source_path, into])
    check_model_output(out)
    target = into if into is not None else arch
    try:
        rep = import_weights(
            source_path,
            target,
            layers=layers,
            mapping=mapping,
            strict=strict,
            skip_mismatched=skip_mismatched,
            check_inputs=check,
            check_outputs=reference,
            tolerance=tolerance,
            unsafe=unsafe,
            flatten_order=flatten_order,
        )
    except WeightImportError as err:
        partial = getattr(err, "report", None)
        if partial is not None and partial.tensors:
            report.render(_tensor_table(partial))
        raise
    save_model(rep.model, out)
    report.render(_tensor_table(rep))
    left = [t["weight"] for t in rep.targets if t["status"] != "filled"]
    if left:
        report.info(f"left at init: {', '.join(left)}")
    if rep.check:
        report.info(
            f"check: max abs difference {rep.check['max_abs_diff']:.3g} on {rep.check['rows']} rows "
            f"(tolerance {rep.check['tolerance']:g})"
        )
    counts = rep.counts()
    rec = record.make_record(
        "import-weights",
        None,
        model=str(out),
        source=str(Path(source_path).resolve()),
        metrics={"max_abs_diff": rep.check["max_abs_diff"]} if rep.check else None,
    )
    rec["import"] = rep.to_dict()

    def human() -> None:
        typer.echo(
            f"wrote {out}: {counts['assigned']} tensors assigned, {counts['unused']} unused, "
            f"{counts['targets_left_at_init']} target weights left at init"
        )

    emit_record(rec, json_flag, human)


def _tensor_table(rep):
    """The source tensors as a table; optimizer and bookkeeping tensors become one caption line."""
    from rich.table import Table

    from reuse.weights.importer import STATUS_KNOWN_UNUSED, STATUS_OPTIMIZER

    hidden = [
        r
        for r in rep.tensors
        if r["status"] in (STATUS_OPTIMIZER, STATUS_KNOWN_UNUSED) and not r.get("note")
    ]
    caption = f"{len(hidden)} optimizer / bookkeeping tensors not imported" if hidden else None
    table = Table(
        title=f"import from {rep.source}",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for col in ("source tensor", "shape", "status", "target", "target shape"):
        table.add_column(col, no_wrap=True)
    table.add_column("conversion / note")
    styles = {"assigned": "green", "shape mismatch": "red", "unused": "yellow"}
    for row in rep.tensors:
        if any(row is h for h in hidden):
            continue
        note = "; ".join(x for x in (row.get("conversion"), row.get("note")) if x)
        table.add_row(
            row["name"],
            _shape(row["shape"]),
            row["status"],
            row["target"] or "",
            _shape(row["target_shape"]),
            note,
            style=styles.get(row["status"]),
        )
    return table


def _shape(shape) -> str:
    return "" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"
