"""`reuse lr-find`: option errors, its plot and record, and its suggestion piped into `reuse
finetune`."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli, last_record, png_ok, shell


def test_lr_find_bad_range_is_one_error_line(tuning_task):
    _, path, train, _ = tuning_task
    result = cli(["lr-find", path, "--data", train, "--start", "1", "--end", "0.1"])
    assert result.exit_code == 2
    assert "`end` must be greater than start=1. Received: end=0.1" in result.stderr
    result = cli(["lr-find", path, "--data", train, "--plot", "lr.pdf"])
    assert result.exit_code == 2 and "--plot writes a PNG" in result.stderr


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_lr_find_pipes_its_suggestion_into_finetune(tuning_task):
    tmp, path, train, _ = tuning_task
    proc = shell(
        f"reuse lr-find {path} --data {train} --steps 25 --start 1e-4 --end 10 --seed 0"
        f" | reuse finetune --data {train} --lr from-record --epochs 1 -o piped.keras",
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr
    record = last_record(proc.stdout)
    assert record["command"] == "finetune"
    assert record["stages"][0]["lr"] == pytest.approx(
        record["lr"]
    )  # finetune trained at the suggestion
    assert record["lr_rule"] == "valley"
    assert "suggested lr" in proc.stderr and "┤" in proc.stderr  # the terminal chart


@pytest.mark.slow
def test_lr_find_cli_writes_a_plot_and_a_record(tuning_task):
    tmp, path, train, _ = tuning_task
    result = cli(
        [
            "lr-find",
            path,
            "--data",
            train,
            "--steps",
            "20",
            "--start",
            "1e-4",
            "--rule",
            "steepest",
            "--plot",
            tmp / "lr.png",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["command"] == "lr-find" and record["lr_rule"] == "steepest"
    assert record["lr"] == record["lr_suggestions"]["steepest"]
    assert record["lr_plot"] == str((tmp / "lr.png").resolve())
    png_ok(tmp / "lr.png")
    assert "the loss fell only" not in result.stderr  # a curve with a fall: no flat note


def test_lr_find_says_when_the_loss_never_fell(tuning_task):
    """Rates too small to move the weights give a flat curve: the rules' picks are noise, and
    the command says so in one note line (it still suggests, as fastai does)."""
    _, path, train, _ = tuning_task
    args = ["lr-find", path, "--data", train, "--steps", "20", "--start", "1e-12", "--end", "1e-10", "--seed", "0"]  # fmt: skip
    result = cli(args)
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "the loss fell only" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")
    assert "raise --end" in notes[0]
