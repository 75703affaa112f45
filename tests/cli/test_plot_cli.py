"""`reuse plot`: training curves from history files or a piped record, as real PNGs; its errors."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers import cli, png_ok


def _history(path, stages=(0,), epochs=4, lr=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    rows, epoch = [], 0
    for stage in stages:
        for _ in range(epochs):
            epoch += 1
            rows.append(
                {
                    "stage": stage,
                    "epoch": epoch,
                    "loss": 1 / epoch + rng.random() * 0.1,
                    "accuracy": 1 - 1 / (epoch + 1),
                    "val_loss": 1.1 / epoch,
                    "val_accuracy": 0.9 - 1 / (epoch + 2),
                    "lr": lr / 2**stage,
                    "tap": "input",
                }
            )
    from reuse.training.history import write_history

    return write_history(rows, path)


def test_plot_histories_with_stages_is_a_real_png(tuning_task, tmp_path):
    a_csv, _ = _history(tmp_path / "a", stages=(0, 1, 2))
    _, b_json = _history(tmp_path / "b", seed=1)
    out = tmp_path / "curves.png"
    result = cli(["plot", a_csv, b_json, "-o", out, "--smooth", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["plot"] == str(out.resolve())
    png_ok(out)


def test_plot_reads_the_history_from_the_piped_record(tuning_task, tmp_path):
    a_csv, _ = _history(tmp_path / "run", stages=(0, 1))
    record = json.dumps(
        {"reuse": "0", "command": "finetune", "model": "m.keras", "history": str(a_csv)}
    )
    result = cli(["plot", "-o", tmp_path / "piped.png"], input=record)
    assert result.exit_code == 0, result.stderr
    png_ok(tmp_path / "piped.png")


def test_plot_errors(tmp_path):
    result = cli(["plot", tmp_path / "missing.csv", "-o", tmp_path / "x.png"])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    a_csv, _ = _history(tmp_path / "a")
    result = cli(["plot", a_csv, "-o", tmp_path / "x.png", "--smooth", "1"])
    assert result.exit_code == 2 and "Received: smooth=1" in result.stderr
    result = cli(["plot", a_csv, "-o", tmp_path / "x.jpg"])
    assert result.exit_code == 2 and "PNG" in result.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.jpg").exists()
