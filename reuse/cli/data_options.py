"""Data options shared by every command that reads --data (declared once, used everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DataOpt = Annotated[Optional[Path], typer.Option("--data", "-d", help="Data: .npz, .npy (with --labels), .h5, .csv, an image folder, or MNIST IDX files.")]
ValOpt = Annotated[Optional[Path], typer.Option("--val", help="Validation data (same formats as --data).")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="Labels for a .npy or IDX --data.")]
XKeyOpt = Annotated[Optional[str], typer.Option("--x-key", help="Inputs key in .npz / HDF5.")]
YKeyOpt = Annotated[Optional[str], typer.Option("--y-key", help="Labels key in .npz / HDF5.")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="Label column of a CSV (name or index).")]
ImageSizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="Resize images of a folder to HxW, e.g. 32x32.")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="train or test, for a folder of MNIST IDX files.")]
ClassesOpt = Annotated[Optional[str], typer.Option("--classes", help="Keep these classes and number them 0..k-1, e.g. 5-9 or 1,3,7.")]
PerClassOpt = Annotated[Optional[int], typer.Option("--per-class", help="Keep N rows per class.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Keep the first N rows (after the other selections).")]
ValSplitOpt = Annotated[Optional[float], typer.Option("--val-split", help="Hold out this fraction of --data for validation.")]


def collect(**options) -> dict:
    """The data options that were given, ready for reuse.data.load_data."""
    return {k: v for k, v in options.items() if v is not None}


def load(path, options: dict):
    from reuse.data import load_data

    opts = dict(options)
    if isinstance(opts.get("image_size"), str):
        try:
            h, w = (int(v) for v in opts["image_size"].lower().split("x"))
        except ValueError:
            from reuse.errors import UsageError

            raise UsageError(f"--image-size must look like 32x32. Received: {opts['image_size']!r}", "e.g. --image-size 64x64") from None
        opts["image_size"] = (h, w)
    return load_data(path, **opts)
