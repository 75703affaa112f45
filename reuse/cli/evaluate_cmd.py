"""`reuse evaluate` and `reuse predict`: score a model on labelled data, write its predictions;
both take test-time augmentation (`--tta K`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli import training_options as T
from reuse.cli.common import JsonOpt, ModelArg, UnsafeOpt, command, emit_record, seed_option

BatchOpt = Annotated[
    int, typer.Option("--batch-size", help="Rows per forward pass (memory, not results).")
]
SeedOpt = seed_option("the rows --limit and --per-class pick, and the --tta views")
PredictSeedOpt = seed_option(
    "the rows --limit picks, and the --tta views"
)  # predict: no --per-class

TtaOpt = Annotated[
    int,
    typer.Option(
        "--tta",
        metavar="K",
        help="Test-time augmentation: average the outputs over K augmented views plus the "
        "clean input (the spec is --augment, else the one finetune recorded).",
    ),
]


@command
def evaluate_command(
    model: ModelArg = None,
    data: D.DataOpt = None,
    batch_size: BatchOpt = 256,
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
    tta: TtaOpt = 0,
    augment: T.TtaAugmentOpt = None,
    image_shape: T.ImageShapeOpt = None,
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Loss, accuracy and a per-class summary of a model on labelled data.

    Examples:

        reuse evaluate tuned.keras --data test.npz

        reuse finetune base.keras --data train.npz | reuse evaluate --data test.npz

        reuse evaluate tuned.keras --data test.npz --tta 8 --augment digits --image-shape 28,28,1
    """
    from reuse.core import record, report
    from reuse.core.errors import UsageError
    from reuse.formats import model_io
    from reuse.inference.evaluate import check_batch_size, evaluate

    check_batch_size(batch_size)
    path, upstream = record.resolve_input(model)
    if data is None:
        raise UsageError("no data to evaluate on", "pass --data DATA")
    opts = D.data_options_from(locals())
    tta_options = _tta(tta, augment, image_shape, seed, upstream)
    dataset = opts.load()
    ev = evaluate(
        model_io.load_model(path, unsafe=unsafe), dataset, batch_size=batch_size, tta=tta_options
    )
    inverse = {int(new): old for old, new in (dataset.class_map or {}).items()}
    for row in ev.per_class:  # report the labels as they are in the data, not as remapped
        row["label"] = inverse.get(row["class"], row["class"])
    rec = record.make_record(
        "evaluate",
        upstream,
        drop=("stages", "history", "report", "used_cache", *_tta_drop(tta_options)),
        **_tta_fields(tta_options),
        model=path,
        data=str(data),
        metrics=ev.metrics(),
        per_class=ev.per_class,
    )

    def human():
        from rich.table import Table

        con = report.console()
        con.print(
            f"{ev.rows} rows  loss ({ev.loss_name}) {ev.loss:.4f}"
            + (f"  accuracy {ev.accuracy:.4f}" if ev.accuracy is not None else "")
        )
        if ev.tta is not None:
            con.print(
                f"with test-time augmentation ({tta_options.k} views of {tta_options.spec}): "
                f"loss {ev.tta.loss:.4f}"
                + (f"  accuracy {ev.tta.accuracy:.4f}" if ev.tta.accuracy is not None else "")
            )
        if ev.per_class:
            table = Table()
            for col in ("label", "support", "precision", "recall"):
                table.add_column(col, justify="right")
            for r in ev.per_class:
                table.add_row(
                    str(r["label"]),
                    str(r["support"]),
                    f"{r['precision']:.3f}",
                    f"{r['recall']:.3f}",
                )
            con.print(table)

    emit_record(rec, json_flag, human)


@command
def predict_command(
    model: ModelArg = None,
    data: D.DataOpt = None,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="preds.npy (raw outputs) or preds.csv (outputs + predicted class).",
        ),
    ] = Path("preds.npy"),
    batch_size: BatchOpt = 256,
    labels: D.LabelsOpt = None,
    x_key: D.XKeyOpt = None,
    y_key: D.YKeyOpt = None,
    label_col: D.LabelColOpt = None,
    image_size: D.ImageSizeOpt = None,
    split: D.SplitOpt = None,
    classes: D.ClassesOpt = None,
    limit: D.LimitOpt = None,
    tta: TtaOpt = 0,
    augment: T.TtaAugmentOpt = None,
    image_shape: T.ImageShapeOpt = None,
    seed: PredictSeedOpt = None,
    json_flag: JsonOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Write a model's predictions for every row of the data.

    Examples:

        reuse predict tuned.keras --data test.npz -o preds.csv

        reuse predict tuned.keras --data test.npz -o preds.npy --tta 8 --augment crop:0.9,flip
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.errors import UsageError
    from reuse.formats import model_io
    from reuse.inference.evaluate import check_batch_size, check_predictions_output, predict

    check_batch_size(batch_size)
    path, upstream = record.resolve_input(model)
    if data is None:
        raise UsageError("no data to predict on", "pass --data DATA")
    check_output_path(output, [path, data])
    check_predictions_output(output)
    opts = D.data_options_from(locals())
    tta_options = _tta(tta, augment, image_shape, seed, upstream)
    dataset = opts.load()
    out = predict(
        model_io.load_model(path, unsafe=unsafe),
        dataset,
        output,
        batch_size=batch_size,
        class_map=getattr(dataset, "class_map", None),
        tta=tta_options,
    )
    rec = record.make_record(
        "predict",
        upstream,
        drop=_tta_drop(tta_options),
        **_tta_fields(tta_options),
        model=path,
        data=str(data),
        predictions=str(Path(out).resolve()),
        rows=len(dataset),
    )
    emit_record(
        rec, json_flag, lambda: report.console().print(f"wrote {out} ({len(dataset)} rows)")
    )


def _tta_drop(tta_options) -> tuple:
    """The upstream fields evaluate / predict replace: `tta` always (it says what this
    command did); the augmentation fields when --tta ran (else they pass through: they are
    the model's training spec, the default of a later --tta)."""
    from reuse.core.record import AUGMENT_FIELDS

    return ("tta", *(AUGMENT_FIELDS if tta_options is not None else ()))


def _tta_fields(tta_options) -> dict:
    """The record fields of a --tta run: `tta` (K), `augment`, `image_shape`, `seed`."""
    from reuse.core.record import augment_fields

    if tta_options is None:
        return {}
    fields = augment_fields(tta_options.spec, tta_options.image_shape, tta_options.seed)
    return {"tta": tta_options.k, **fields}


def _tta(k: int, augment: str | None, image_shape: str | None, seed, upstream):
    """The TTA options of evaluate / predict (checked before TensorFlow starts), or None."""
    from reuse.core.errors import UsageError
    from reuse.inference.evaluate import TTA
    from reuse.training.options import parse_image_shape

    if k is not None and k < 0:
        raise UsageError(
            f"--tta takes K >= 0 augmented views (0: none). Received: {k}", "e.g. --tta 8"
        )
    if not k:
        if augment is not None:
            raise UsageError(
                "--augment here is for test-time augmentation, and --tta is 0",
                "add --tta K with K >= 1 (e.g. --tta 8), or drop --augment",
            )
        if image_shape is not None:
            raise UsageError(
                "--image-shape here is for test-time augmentation, and --tta is 0",
                "add --tta K with K >= 1 and --augment SPEC, or drop --image-shape",
            )
        return None
    spec = augment or (upstream or {}).get("augment")
    if not spec:
        raise UsageError(
            "--tta needs an augmentation",
            "pass --augment SPEC, or pipe in the record of a finetune run that used --augment",
        )
    from reuse.augment.spec import parse_augment

    shape = image_shape or (upstream or {}).get("image_shape")
    options = TTA(
        spec=parse_augment(spec).canonical(),
        k=int(k),
        image_shape=parse_image_shape(shape) if shape else None,
        seed=int(seed or 0),
    )
    options.check()
    return options
