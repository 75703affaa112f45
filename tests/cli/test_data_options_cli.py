"""The shared data options of the CLI (reuse.cli.data_options): parsed into DataOptions, bad values
refused."""

from __future__ import annotations

from reuse.cli.common import command
from reuse.cli.data_options import (
    ClassesOpt,
    DataOpt,
    ImageSizeOpt,
    LabelColOpt,
    LabelsOpt,
    LimitOpt,
    PerClassOpt,
    SeedOpt,
    SplitOpt,
    ValSplitOpt,
    XKeyOpt,
    YKeyOpt,
    data_options,
)


def test_cli_data_options_parse_and_refuse():
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.command()
    @command
    def show(
        data: DataOpt = None,
        labels: LabelsOpt = None,
        x_key: XKeyOpt = None,
        y_key: YKeyOpt = None,
        label_col: LabelColOpt = None,
        image_size: ImageSizeOpt = None,
        split: SplitOpt = None,
        classes: ClassesOpt = None,
        per_class: PerClassOpt = None,
        limit: LimitOpt = None,
        val_split: ValSplitOpt = None,
        seed: SeedOpt = None,
    ):
        opts = data_options(
            data,
            labels,
            x_key,
            y_key,
            label_col,
            image_size,
            split,
            classes,
            per_class,
            limit,
            val_split,
            seed,
        )
        print(opts)

    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "--data",
            "d.npz",
            "--image-size",
            "32x30",
            "--classes",
            "5-9",
            "--per-class",
            "3",
            "--val-split",
            "0.2",
            "--seed",
            "1",
            "--label-col",
            "2",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (
        "image_size=(32, 30)" in ok.stdout
        and "classes='5-9'" in ok.stdout
        and "per_class=3" in ok.stdout
    )
    bad = runner.invoke(app, ["--data", "d.npz", "--val-split", "2"])
    assert bad.exit_code == 2 and "Received: val_split=2.0" in bad.output
    bad = runner.invoke(app, ["--image-size", "big"])
    assert bad.exit_code == 2 and "`--image-size` must be HEIGHTxWIDTH" in bad.output
