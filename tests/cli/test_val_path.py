"""A --val path that does not exist: the line named --data ("check the --data path") and came
after TensorFlow started. It now names --val, before any model or data is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli_fresh_process

DIGITS = Path(__file__).resolve().parents[2] / "models" / "digits_0to4.keras"


@pytest.mark.parametrize(
    "command",
    [
        ["finetune", str(DIGITS)],
        ["tune", str(DIGITS)],
        ["pretrain", "autoencoder"],
        ["pretrain", "pairs"],
    ],
    ids=lambda c: " ".join(c[:1] if c[0] != "pretrain" else c),
)
def test_a_missing_val_names_val_before_tensorflow(tmp_path, command):
    data = tmp_path / "train.npz"
    data.write_bytes(b"")  # never read: the --val check comes first
    missing = tmp_path / "nope.npz"
    args = [*command, "--data", str(data), "--val", str(missing), "-o", str(tmp_path / "out.keras")]
    if command[0] == "tune":
        args[-1] = str(tmp_path / "best.json")
    [(code, output)], tensorflow = cli_fresh_process([args])
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 1, output
    assert lines == [f"Error: {missing}: no such file or folder — check the --val path"], output
    assert not tensorflow
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]
