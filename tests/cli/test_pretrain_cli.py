"""`reuse pretrain autoencoder|pairs`: help without TensorFlow, one-line errors, the record."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cli, last_record, shell


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = (rng.random((30, 6)) + y[:, None]).astype("float32")
    labelled = tmp_path / "labelled.npz"
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(labelled, x=x, y=y)
    np.savez(unlabelled, x=x)
    return labelled, unlabelled


@pytest.mark.parametrize("args", [[], ["autoencoder"], ["pairs"]])
def test_help_has_examples_and_imports_no_tensorflow(tmp_path, args):
    line = " ".join(["pretrain", *args])
    result = shell(f"python -X importtime -m reuse {line} --help", tmp_path)
    assert result.returncode == 0, result.stderr
    imported = {x.split("|")[-1].strip() for x in result.stderr.splitlines() if "|" in x}
    assert not imported & {"tensorflow", "keras", "h5py"}
    if args:
        assert "Examples:" in result.stdout and f"reuse pretrain {args[0]} --data" in result.stdout
    else:
        assert "autoencoder" in result.stdout and "pairs" in result.stdout


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["autoencoder"], 2, "no data to pretrain on — pass --data DATA"),
        (["autoencoder", "--data", "{u}", "--layers", "300,x"], 2, "--layers must be positive"),
        (["autoencoder", "--data", "{u}", "--mode", "greedy"], 2, "--mode must be one of"),
        (["autoencoder", "--data", "{u}", "--noise", "-1"], 2, "--noise must be >= 0"),
        (["autoencoder", "--data", "{u}", "--resume"], 2, "--resume needs --checkpoint-dir"),
        (["pairs", "--data", "{u}", "--pairs", "0"], 2, "--pairs must be >= 1"),
        (["pairs", "--data", "{u}", "--activation", "elux"], 2, "unknown activation 'elux'"),
        (["pairs", "--data", "{u}", "--combine", "sum"], 2, "--combine must be one of"),
        (["pairs", "--data", "{u}", "--layers", "4", "--epochs", "1"], 1, "has no labels"),
        (["pairs", "--data", "{tmp}/missing.npz"], 1, "missing.npz"),
        (["autoencoder", "--data", "{u}", "-o", "{tmp}/no/such/base.keras"], 1, "does not exist"),
        (
            [
                "autoencoder",
                "--data",
                "{u}",
                "--epochs",
                "1",
                "--checkpoint-dir",
                "{tmp}/ck",
                "--resume",
            ],
            2,
            "no checkpoint in",
        ),
    ],
)
def test_bad_input_gets_one_error_line(tmp_path, npz, args, code, words):
    values = {"u": npz[1], "tmp": tmp_path}
    result = cli(["pretrain", *(a.format(**values) for a in args)])
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and words in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_pairs_writes_the_tower_and_a_record_finetune_can_follow(tmp_path, npz):
    out = tmp_path / "tower.keras"
    result = cli(
        ["pretrain", "pairs", "--data", npz[0], "--layers", "8,4", "--pairs", "60", "--epochs", "1"]
        + ["--seed", "0", "-o", out, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert record["command"] == "pretrain" and record["pretrain"] == "pairs"
    assert record["model"] == str(out.resolve()) and out.exists()
    assert record["cut_finetune"] == "hidden2"  # a piped finetune keeps the whole tower
    assert record["rows"] == 60 and "loss" in record["metrics"]
    assert (tmp_path / "tower.history.csv").exists()
