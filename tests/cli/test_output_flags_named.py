"""Outputs other than -o (--history, --plot, --checkpoint-dir, --tensorboard) are checked
before any work, and the hint names their own flag. Before: `--history /missing/h` said
"choose another -o"; a read-only --checkpoint-dir or lr-find --plot failed after the
training or the sweep with "choose another -o"; a read-only --tensorboard ended in
"TensorFlow stopped (PermissionDeniedError) ... check that the data fits the model"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import cli

DIGITS = Path(__file__).resolve().parents[2] / "models" / "digits_0to4.keras"


def _only_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["finetune", DIGITS, "--history", "{missing}/h"], "--history"),
        (["lr-find", DIGITS, "--plot", "{missing}/lr.png"], "--plot"),
        (["finetune", DIGITS, "--checkpoint-dir", "{file}/ck"], "--checkpoint-dir"),
        (
            ["pretrain", "autoencoder", "--layers", "4", "--checkpoint-dir", "{file}/ck"],
            "--checkpoint-dir",
        ),
        (["finetune", DIGITS, "--tensorboard", "{file}"], "--tensorboard"),
    ],
    ids=lambda a: a if isinstance(a, str) else a[0],
)
def test_the_hint_names_the_flag(tmp_path, args, flag):
    file = tmp_path / "a_file"
    file.write_text("x")
    filled = [str(a).format(missing=tmp_path / "missing", file=file) for a in args]
    filled += ["--data", str(tmp_path / "d.npz")]
    if args[0] != "lr-find":  # lr-find writes no model
        filled += ["-o", str(tmp_path / "out.keras")]
    result = cli(filled)
    assert result.exit_code == 1, result.stderr
    line = _only_error(result)
    assert line.endswith(flag) or f"with {flag}" in line, line
    assert "-o" not in line.split(" — ")[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("flag", ["--checkpoint-dir", "--tensorboard"])
def test_a_read_only_folder_is_refused_before_training(tmp_path, monkeypatch, flag):
    import reuse.core.atomic as atomic

    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        atomic.os, "access", lambda p, mode: False if Path(p) == read_only else real_access(p, mode)
    )
    result = cli(
        [
            "finetune",
            DIGITS,
            "--data",
            tmp_path / "d.npz",
            flag,
            read_only / "logs",
            "-o",
            tmp_path / "t.keras",
        ]
    )
    assert result.exit_code == 1, result.stderr
    line = _only_error(result)
    assert (
        line
        == f"Error: cannot write into {read_only} (read-only or no permission) — choose another {flag}"
    )
    assert not (tmp_path / "t.keras").exists()
