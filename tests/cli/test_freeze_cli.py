"""`reuse freeze` / `reuse unfreeze`: output names, records, errors, real shell pipes, a
terminal."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import (
    MLP_NAMES,
    ROOT,
    classification_data,
    cli,
    frozen_of,
    last_record,
    mlp,
    reuse_exe,
    shell,
)


def test_cli_freeze_writes_default_output_and_record(mlp_path):
    import keras

    original = mlp_path.read_bytes()
    result = cli(["freeze", mlp_path, "--upto", "hidden2"])
    assert result.exit_code == 0, result.stderr
    out = mlp_path.parent / "base.frozen.keras"
    record = last_record(result.stdout)
    assert record["command"] == "freeze" and record["model"] == str(out.resolve())
    assert record["frozen"] == ["hidden1", "hidden2"] and record["cut"] == "hidden2"
    assert record["trainable"] == MLP_NAMES[2:]
    assert mlp_path.read_bytes() == original  # the input is never modified
    assert frozen_of(keras.models.load_model(out)) == ["hidden1", "hidden2"]
    assert "Froze 2 layers" in result.stderr  # the summary goes to stderr when stdout is a pipe


def test_cli_unfreeze_default_output_and_explicit_o(mlp_path, tmp_path):
    import keras

    frozen = tmp_path / "f.keras"
    assert cli(["freeze", mlp_path, "--all", "-o", frozen]).exit_code == 0
    result = cli(["unfreeze", frozen, "--index", "-2:"])
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "f.unfrozen.keras"
    assert last_record(result.stdout)["model"] == str(out.resolve())
    assert frozen_of(keras.models.load_model(out)) == MLP_NAMES[:4]
    assert last_record(result.stdout)["cut"] == "hidden4"


def test_cli_output_equal_to_input_refused_unless_in_place(mlp_path):
    import keras

    original = mlp_path.read_bytes()
    result = cli(["freeze", mlp_path, "--upto", "hidden1", "-o", mlp_path])
    assert result.exit_code == 1
    assert "Error: output" in result.stderr and "--in-place" in result.stderr
    assert mlp_path.read_bytes() == original
    result = cli(
        ["freeze", mlp_path, "--upto", "hidden1", "-o", mlp_path.parent / "x.keras", "--in-place"]
    )
    assert result.exit_code == 2 and "--in-place" in result.stderr
    result = cli(["freeze", mlp_path, "--upto", "hidden1", "--in-place"])
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["model"] == str(mlp_path.resolve())
    assert frozen_of(keras.models.load_model(mlp_path)) == ["hidden1"]


def test_cli_freezing_everything_warns(mlp_path):
    result = cli(["freeze", mlp_path, "--all"])
    assert result.exit_code == 0
    assert "Warning: every layer of the model is frozen" in result.stderr
    assert last_record(result.stdout)["trainable"] == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--upto", "hiden2"], 1, ["Error: no layer named 'hiden2'", "did you mean: hidden2"]),
        (["--from", "hidden4", "--to", "hidden2"], 1, ["Error: --from hidden4", "comes after"]),
        (["--index", "7:"], 1, ["Error: --index 7: selects no layer"]),
        ([], 2, ["Error: no layers chosen"]),
        (["--upto", "hidden2", "--all"], 2, ["Error: --upto and --all cannot be used together"]),
        (["--all", "-o", "out.txt"], 1, ["Error: cannot save a model as 'out.txt'"]),
    ],
)
def test_cli_errors(mlp_path, args, code, words):
    result = cli(["freeze", mlp_path, *args])
    assert result.exit_code == code
    for word in words:
        assert word in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert not (mlp_path.parent / "base.frozen.keras").exists()


@pytest.mark.slow
def test_frozen_batchnorm_and_dense_unchanged_by_training(tmp_path):
    import keras

    base = tmp_path / "bn.keras"
    mlp(bn=True).save(base)
    out = tmp_path / "bn.frozen.keras"
    result = cli(["freeze", base, "--layers", "hidden1|bn1", "-o", out])
    assert result.exit_code == 0, result.stderr
    x, y = classification_data(48)
    x = x * 3.0 + 1.0  # statistics far from BN's initial moving mean 0 / variance 1

    def train(model):
        bn = model.get_layer("bn1")
        before = {
            w.path: w.numpy().copy() for w in [*bn.weights, *model.get_layer("hidden1").weights]
        }
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        after = {w.path: w.numpy() for w in [*bn.weights, *model.get_layer("hidden1").weights]}
        return before, after

    frozen = keras.models.load_model(out)
    hidden2 = frozen.get_layer("hidden2").kernel.numpy().copy()
    before, after = train(frozen)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert not np.array_equal(hidden2, frozen.get_layer("hidden2").kernel.numpy())
    # Control: the same training moves the statistics of a trainable BN.
    before, after = train(keras.models.load_model(base))
    mean = next(k for k in before if k.endswith("moving_mean"))
    assert not np.array_equal(before[mean], after[mean])


@pytest.mark.slow  # real processes, 5-7 s: in `make test-slow`
def test_shell_freeze_pipe_to_inspect(mlp_path):
    original = mlp_path.read_bytes()
    proc = shell(
        "reuse freeze base.keras --upto hidden2 | reuse inspect --format json", cwd=mlp_path.parent
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert {r["name"]: r["trainable"] for r in rows} == {
        "hidden1": False,
        "hidden2": False,
        "hidden3": True,
        "hidden4": True,
        "hidden5": True,
        "output": True,
    }
    assert json.loads(proc.stdout)["path"].endswith("base.frozen.keras")
    assert mlp_path.read_bytes() == original


@pytest.mark.slow  # real processes, 5-7 s: in `make test-slow`
def test_shell_record_file_on_stdin_keeps_passthrough_fields(mlp_path):
    record = {
        "reuse": "0.1.0",
        "command": "cache-features",
        "model": str(mlp_path),
        "data": "/data/train.npz",
        "features": "/old/feats.h5",
        "cut": "hidden5",
    }
    (mlp_path.parent / "record.json").write_text(json.dumps(record) + "\n")
    proc = shell("reuse freeze --upto hidden2 < record.json", cwd=mlp_path.parent)
    assert proc.returncode == 0, proc.stderr
    out = last_record(proc.stdout)
    assert out["model"] == str((mlp_path.parent / "base.frozen.keras").resolve())
    assert out["data"] == "/data/train.npz"  # not about the model: passes through
    assert "features" not in out and out["cut"] == "hidden2"  # about the old model: replaced


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_shell_chain_reads_the_record_of_a_previous_command(mlp_path):
    proc = shell(
        "reuse freeze base.keras --upto hidden1 -o a.keras "
        "| reuse freeze --layers hidden3 | reuse inspect --format json",
        cwd=mlp_path.parent,
    )
    assert proc.returncode == 0, proc.stderr
    frozen = [r["name"] for r in json.loads(proc.stdout)["rows"] if not r["trainable"]]
    assert frozen == ["hidden1", "hidden3"]  # the second step adds to what the first froze
    assert (mlp_path.parent / "a.frozen.keras").exists()  # the default name next to a.keras


def run_on_tty(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run `reuse ARGS` with stdout on a pseudo-terminal; stderr is captured apart."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="120")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*shlex.split(reuse_exe()), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), stderr


@pytest.mark.slow  # over 10 s on 2 shared cores
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_tty_json_flag_prints_record_and_plain_tty_prints_human_view(mlp_path):
    code, out, err = run_on_tty(
        ["freeze", "base.keras", "--upto", "hidden2", "--json"], mlp_path.parent
    )
    assert code == 0, err
    record = last_record(out)
    assert record["frozen"] == ["hidden1", "hidden2"] and record["command"] == "freeze"
    code, out, err = run_on_tty(
        ["freeze", "base.keras", "--upto", "hidden2", "-o", "h.keras"], mlp_path.parent
    )
    assert code == 0, err
    assert "Froze 2 layers" in out and "Trainable now" in out and "hidden3" in out
    assert "Wrote h.keras" in out and '"command"' not in out
