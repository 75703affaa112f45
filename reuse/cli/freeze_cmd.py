"""`reuse freeze` / `reuse unfreeze`: mark layers (non-)trainable and write a new model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli.common import JsonOpt, ModelArg, UnsafeOpt, command
from reuse.cli.selector_options import (
    AllOpt,
    ExceptTopOpt,
    FromOpt,
    IndexOpt,
    LayersOpt,
    ToOpt,
    UptoOpt,
)

OnlyOpt = Annotated[
    bool,
    typer.Option(
        "--only",
        help="Make the selection the whole frozen set (freeze) or the only trainable "
        "layers (unfreeze); without it, the other layers keep their flags.",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Where to write the model (default: <stem>.frozen.keras, or "
        "<stem>.unfrozen.keras, next to the input).",
        show_default=False,
    ),
]
InPlaceOpt = Annotated[bool, typer.Option("--in-place", help="Overwrite the input model.")]


@command
def freeze_command(
    model: ModelArg = None,
    upto: UptoOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    layers: LayersOpt = None,
    index: IndexOpt = None,
    all_: AllOpt = False,
    except_top: ExceptTopOpt = None,
    only: OnlyOpt = False,
    output: OutputOpt = None,
    in_place: InPlaceOpt = False,
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Mark layers non-trainable and write a new model; the input is never modified.

    Choose the layers with exactly one selector. A frozen BatchNormalization runs in
    inference mode when the model is trained later.

    Examples:

        reuse freeze base.keras --upto hidden2 -o frozen.keras

        reuse freeze transfer.keras --layers 'mobilenetv2_0.35_32/block_[1-3]_.*'

        reuse freeze base.keras --except-top 1 | reuse inspect
    """
    _run("freeze", **locals())


@command
def unfreeze_command(
    model: ModelArg = None,
    upto: UptoOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    layers: LayersOpt = None,
    index: IndexOpt = None,
    all_: AllOpt = False,
    except_top: ExceptTopOpt = None,
    only: OnlyOpt = False,
    output: OutputOpt = None,
    in_place: InPlaceOpt = False,
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Mark layers trainable again and write a new model (the mirror of `reuse freeze`).

    Unfreeze from the top, step by step, as fine-tuning goes on.

    Examples:

        reuse unfreeze frozen.keras --from hidden4 -o step1.keras

        reuse unfreeze transfer.keras --index -10: -o top10.keras

        reuse freeze base.keras --all | reuse unfreeze --index -2:
    """
    _run("unfreeze", **locals())


def _run(
    action,
    *,
    model,
    upto,
    from_,
    to,
    layers,
    index,
    all_,
    except_top,
    only,
    output,
    in_place,
    json_flag,
    unsafe,
) -> None:
    from reuse.core import record
    from reuse.core.atomic import check_output_path
    from reuse.core.errors import OutputError, UsageError
    from reuse.core.naming import default_output
    from reuse.surgery.freezing import check_selector

    selectors = dict(
        upto=upto, from_=from_, to=to, layers=layers, index=index, all=all_, except_top=except_top
    )
    check_selector(**selectors)  # before loading: a usage mistake answers without TensorFlow
    path, upstream = record.resolve_input(model)
    if in_place:
        if output is not None and Path(output).resolve() != Path(path).resolve():
            raise UsageError(
                f"--in-place writes over the input, but -o names another file. Received: -o {output}",
                "drop -o or drop --in-place",
            )
        output = Path(path)
    elif output is None:
        output = default_output(path, action.replace("freeze", "frozen"))
    out = check_output_path(output, [path], in_place=in_place)
    if not out.name.lower().endswith((".keras", ".h5")) or out.name.lower().endswith(".weights.h5"):
        raise OutputError(
            f"cannot save a model as '{out.name}'", "use a .keras (or .h5) output path with -o"
        )

    from reuse.core import report
    from reuse.formats.model_io import load_model, save_model
    from reuse.surgery import freezing

    keras_model = load_model(path, unsafe=unsafe)
    change = getattr(freezing, action)(keras_model, **selectors, only=only)
    save_model(keras_model, out)

    if change.all_frozen:
        report.warn(
            "every layer of the model is frozen now: training it will change no weight "
            "(unfreeze the top with e.g. `reuse unfreeze --index -1:`)"
        )
    if change.extra.get("frozen_top"):
        report.info(
            f"note: a skip connection crosses {change.extra['frozen_top']}, the top frozen "
            f"layer, so the model cannot be cut there; the recorded cut is "
            f"{change.cut or 'none'}, the highest valid cut point below it "
            "(`reuse inspect` lists the cut points)"
        )
    if not change.changed:
        state = "frozen" if action == "freeze" else "trainable"
        report.info(f"nothing changed: the selected layers were {state} already")

    rec = record.make_record(
        action,
        upstream,
        drop=record.MODEL_BOUND_FIELDS,
        model=out,
        frozen=list(change.frozen),
        trainable=list(change.trainable),
        cut=change.cut,
    )
    from reuse.cli.common import emit_record

    if record.wants_json(json_flag):
        report.info(_summary(change, out))
    emit_record(rec, json_flag, human=lambda: _human(change, out))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _summary(change, out: Path) -> str:
    done = (
        f"froze {_plural(len(change.frozen_now), 'layer')} ({change.params_frozen:,} params)"
        if change.action == "freeze"
        else f"unfroze {_plural(len(change.unfrozen_now), 'layer')} ({change.params_unfrozen:,} params)"
    )
    if change.action == "freeze" and change.unfrozen_now:
        done += f", unfroze {_plural(len(change.unfrozen_now), 'layer')} ({change.params_unfrozen:,} params)"
    if change.action == "unfreeze" and change.frozen_now:
        done += (
            f", froze {_plural(len(change.frozen_now), 'layer')} ({change.params_frozen:,} params)"
        )
    return (
        f"{done[0].upper()}{done[1:]}; trainable now: {_plural(len(change.trainable), 'layer')} "
        f"({change.trainable_params:,} params) → {out}"
    )


def _names(paths: list[str], limit: int = 8) -> str:
    if len(paths) <= limit:
        return ", ".join(paths)
    return (
        ", ".join(paths[: limit // 2])
        + f", … ({len(paths) - limit} more) …, "
        + ", ".join(paths[-limit // 2 :])
    )


def _human(change, out: Path) -> None:
    from rich.table import Table

    from reuse.core import report

    console = report.stdout_console(soft_wrap=True)
    console.print(_summary(change, out).split(" → ")[0].split(";")[0], style="bold", markup=False)
    for label, paths in (("Frozen now", change.frozen_now), ("Unfrozen now", change.unfrozen_now)):
        if paths:
            console.print(f"  {label}: {_names(paths)}", markup=False)
    table = Table(title="Trainable now", title_justify="left")
    table.add_column("layer")
    table.add_column("params", justify="right")
    rows = list(change.trainable.items())
    shown = rows if len(rows) <= 20 else rows[:10] + [("…", None)] + rows[-9:]
    for name, params in shown:
        table.add_row(name, "" if params is None else f"{params:,}")
    if rows:
        console.print(table)
    else:
        console.print("Trainable now: nothing", markup=False)
    console.print(
        f"Trainable params: {change.trainable_params:,}  frozen params: {change.frozen_params:,}  "
        f"({_plural(len(change.frozen), 'frozen layer')}, cut: {change.cut or '-'})",
        markup=False,
    )
    console.print(f"Wrote {out}", markup=False)
