"""`reuse inspect`: list the layers of a model, the tensors of a weight file, or a cache."""

from __future__ import annotations

from typing import Annotated

import typer

from reuse.cli.common import FormatOpt, ModelArg, UnsafeOpt, command
from reuse.cli.output import render_rows


@command
def inspect_command(
    model: ModelArg = None,
    weights: Annotated[
        bool,
        typer.Option(
            "--weights", "-w", help="List every weight tensor: shape, dtype, min, max, mean, zeros."
        ),
    ] = False,
    fmt: FormatOpt = "table",
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch", help="Architecture (.keras/.h5 model or .json config) for a .weights.h5 file."
        ),
    ] = None,
    full_load: Annotated[
        bool,
        typer.Option(
            "--full-load", help="Load the model with Keras instead of reading the file directly."
        ),
    ] = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """List the layers of a model (or the tensors of a weight file, or a feature cache).

    One row per layer: index, name (nested models as outer/inner), class, output shape,
    parameters, trainable. .keras and .h5 files are read without importing TensorFlow.

    Examples:

        reuse inspect models/digits_0to4.keras

        reuse inspect models/digits_0to4.keras --weights --format csv

        reuse inspect model.weights.h5 --arch base.keras

        reuse freeze base.keras --upto hidden2 | reuse inspect
    """
    from reuse.core import record
    from reuse.inspection import inspect

    path, _ = record.resolve_input(model)
    result = inspect(path, weights=weights, unsafe=unsafe, full_load=full_load, arch=arch)
    fmt_value = getattr(fmt, "value", fmt)
    footer = []
    if result.totals:
        t = result.totals
        footer.append(
            f"Total params: {t.get('total_params', 0):,}  trainable: {t.get('trainable_params', 0):,}  "
            f"frozen: {t.get('frozen_params', 0):,}"
        )
    for key, value in result.info.items():
        if fmt_value == "table" and not isinstance(value, (dict, list)):
            footer.insert(0, f"{key}: {value}")
    if fmt_value == "table":
        footer[:0] = _signature_lines(result.info.get("signatures", {})) + _io_lines(result.info)
    extra = {"path": str(path), "kind": result.kind, **result.totals}
    if result.info:
        extra["info"] = result.info
    render_rows(
        result.rows,
        result.columns,
        fmt_value,
        title=f"{path}",
        footer=footer,
        extra=extra,
        pad_edge=result.kind != "cache",  # a cache's seven columns fit 80 only without it
    )


def _io_lines(info: dict) -> list[str]:
    """`inputs: face (None, 48, 48, 3)` and `outputs: box (None, 4), ...` of a Keras model."""

    def specs(items) -> str:
        return ", ".join(
            f"{s['name']} ("
            + ", ".join("None" if d is None else str(d) for d in (s["shape"] or []))
            + ")"
            for s in items
        )

    return [f"{key}: {specs(info[key])}" for key in ("inputs", "outputs") if info.get(key)]


def _signature_lines(signatures: dict) -> list[str]:
    """`serve(features: float32 (None, 8)) -> output_0: float32 (None, 3)`, one per signature."""

    def spec(s: dict) -> str:
        shape = (
            "?"
            if s["shape"] is None
            else "(" + ", ".join("None" if d is None else str(d) for d in s["shape"]) + ")"
        )
        return f"{s['name']}: {s['dtype']} {shape}"

    return [
        f"signature {name}({', '.join(spec(s) for s in sig['inputs'])}) -> {', '.join(spec(s) for s in sig['outputs'])}"
        for name, sig in signatures.items()
    ]
