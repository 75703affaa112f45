"""The `--data` options, defined once so that every command spells them the same way.

A command declares them with these `Annotated` aliases and turns them into a `DataOptions`:

    def finetune_command(
        data: DataOpt = None, labels: LabelsOpt = None, x_key: XKeyOpt = None,
        y_key: YKeyOpt = None, label_col: LabelColOpt = None, image_size: ImageSizeOpt = None,
        split: SplitOpt = None, classes: ClassesOpt = None, per_class: PerClassOpt = None,
        limit: LimitOpt = None, val_split: ValSplitOpt = None, seed: SeedOpt = None,
    ):
        opts = data_options_from(locals())
        train, val = opts.load_split()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from reuse.cli.common import SeedOpt
from reuse.core.errors import DataError, UsageError

if TYPE_CHECKING:  # numpy-heavy; imported when a command runs, not for --help
    from reuse.data.dataset import DataOptions

__all__ = [
    "DataOpt",
    "LabelsOpt",
    "XKeyOpt",
    "YKeyOpt",
    "LabelColOpt",
    "ImageSizeOpt",
    "SplitOpt",
    "ClassesOpt",
    "PerClassOpt",
    "LimitOpt",
    "ValSplitOpt",
    "ValOpt",
    "SeedOpt",
    "data_options",
]

_PANEL = "Data"

DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        metavar="PATH",
        help="Data: .npz, .npy (with --labels), .h5/.hdf5, .csv, a folder of images with one "
        "sub-folder per class, an MNIST IDX images file, or a folder of the MNIST files.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
LabelsOpt = Annotated[
    str | None,
    typer.Option(
        "--labels",
        metavar="PATH",
        help="Labels for .npy or IDX inputs (.npy, .txt, .csv or IDX).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
XKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--x-key",
        metavar="NAME",
        help="Name of the inputs in a .npz/HDF5 file (default: x, X, x_train, features, images...).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
YKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--y-key",
        metavar="NAME",
        help="Name of the labels in a .npz/HDF5 file (default: y, Y, y_train, labels...).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
LabelColOpt = Annotated[
    str | None,
    typer.Option(
        "--label-col",
        metavar="NAME|N",
        help="CSV label column, by name or 0-based index (default: a column named label, y, "
        "target or class).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
ImageSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--image-size",
        metavar="HxW",
        help="Resize folder images to HEIGHTxWIDTH, e.g. 32x32 (default: the first image's size).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        metavar="train|test",
        help="train or test: which part of a folder of MNIST files, or of a .npz/HDF5 file with "
        "x_train/x_test keys (default: train).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
ClassesOpt = Annotated[
    str | None,
    typer.Option(
        "--classes",
        metavar="LABELS",
        help="Keep these labels, e.g. 5-9 or 1,3,7; they are remapped to 0..k-1 in sorted order.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
PerClassOpt = Annotated[
    int | None,
    typer.Option(
        "--per-class",
        metavar="N",
        help="Keep N rows of each class (the first N; N at random with --seed).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit",
        metavar="N",
        help="Keep N rows (the first N; N at random with --seed).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
ValSplitOpt = Annotated[
    float | None,
    typer.Option(
        "--val-split",
        metavar="F",
        help="Hold out this fraction of the rows for validation, e.g. 0.2.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
ValOpt = Annotated[
    str | None,
    typer.Option(
        "--val",
        metavar="PATH",
        help="Validation data, in any --data format; the class selection of --data applies to it too.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]


def data_options(
    data: str | None = None,
    labels: str | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
    label_col: str | None = None,
    image_size: str | None = None,
    split: str | None = None,
    classes: str | None = None,
    per_class: int | None = None,
    limit: int | None = None,
    val_split: float | None = None,
    seed: int | None = None,
) -> DataOptions:
    """The parsed, checked data options of a command (nothing is read yet).

    Example:
        >>> data_options("mnist/", classes="5-9", image_size=None, val_split=0.2).classes
        '5-9'

    Raises:
        UsageError: a malformed value (named, with the value received).
    """
    from reuse.data import DataOptions, parse_classes, parse_image_size
    from reuse.data.dataset import check_val_split
    from reuse.data.selection import positive_int

    if classes is not None:
        parse_classes(classes)
    positive_int("per_class", per_class)
    positive_int("limit", limit)
    check_val_split(val_split)
    if split is not None and split not in ("train", "test"):
        raise UsageError(
            f"`--split` must be train or test. Received: split={split!r}",
            "use --split train or --split test (hold out validation rows with --val-split F)",
        )
    return DataOptions(
        data=data,
        labels=labels,
        x_key=x_key,
        y_key=y_key,
        label_col=label_col,
        image_size=parse_image_size(image_size),
        split=split,
        classes=classes,
        per_class=per_class,
        limit=limit,
        val_split=val_split,
        seed=seed,
    )


_FROM_ARGS = (
    "data",
    "labels",
    "x_key",
    "y_key",
    "label_col",
    "image_size",
    "split",
    "classes",
    "per_class",
    "limit",
    "seed",
)


def data_options_from(args: dict) -> DataOptions:
    """`data_options` from a command's arguments (its `locals()`): the data flags it declares
    (those it lacks count as not given; `--val-split` stays with the training options).

    Raises:
        UsageError: a malformed value, as `data_options`; both --val and --val-split given.
    """
    if args.get("val") is not None and args.get("val_split") is not None:
        raise UsageError(
            "--val and --val-split cannot be used together: both say what to validate on",
            "drop --val-split to validate on the --val data, or drop --val",
        )
    return data_options(**{name: args.get(name) for name in _FROM_ARGS})


def require_val(val) -> None:
    """Refuse a --val path that does not exist, before TensorFlow starts; the reader's own
    message would say "check the --data path".

    Raises:
        DataError: no file or folder at `val` (exit code 1).
    """
    from pathlib import Path

    if val is not None and not Path(val).exists():
        raise DataError(f"{val}: no such file or folder", "check the --val path")
