"""`reuse finetune`: the model, history and record it writes, its option errors, caches,
TensorBoard logs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli, mlp, save_npz


def test_cli_finetune_writes_model_history_and_record(finetune_task, tmp_path):
    path, train, valid = finetune_task
    out = tmp_path / "tuned.keras"
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--val",
            valid,
            "-o",
            out,
            "--epochs",
            "3",
            "--seed",
            "0",
            "--head",
            "dense:16:elu,dropout:0.2,dense:3:softmax",
            "--optimizer",
            "nesterov",
            "--lr",
            "0.05",
            "--schedule",
            "exponential:decay_rate=0.5,decay_steps=10",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["command"] == "finetune" and record["model"] == str(out.resolve())
    assert out.exists()
    history = json.loads(open(record["history"].replace(".csv", ".json")).read())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all("lr" in row and "val_loss" in row and row["stage"] == 0 for row in history)
    assert history[-1]["lr"] < history[0]["lr"]  # the schedule decays
    import keras

    tuned = keras.models.load_model(out)
    assert tuned.get_layer("hidden1").trainable is False


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--optimizer", "adamm"], "adam"),
        (["--schedule", "exponentail"], "exponential"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--head", "dense:2:softmax"], "dense:3:softmax"),
        (["--unfreeze", "some"], "--unfreeze must be one of"),
    ],
)
def test_bad_options_get_one_error_line(finetune_task, tmp_path, args, expected):
    path, train, _ = finetune_task
    result = cli(
        ["finetune", path, "--data", train, "-o", tmp_path / "t.keras", "--epochs", "1", *args]
    )
    assert result.exit_code in (1, 2)
    assert result.stderr.startswith("Error:") and expected in result.stderr, result.stderr
    assert not (tmp_path / "t.keras").exists()


def test_no_training_rows_left_after_the_hold_out_is_an_error(finetune_task, tmp_path):
    path, _, _ = finetune_task
    one = save_npz(tmp_path / "one.npz", np.zeros((1, 8), np.float32), np.array([0]))
    out = tmp_path / "t.keras"
    result = cli(["finetune", path, "--data", one, "--unfreeze", "gradual", "-o", out])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: 1 training row(s): holding out 1 for validation leaves none to train on"
        " — pass validation data with --val, or more training rows"
    )
    assert not out.exists()


def test_cache_with_unfreeze_all_is_refused(finetune_task, tmp_path):
    from reuse import load_data, load_model
    from reuse.cache import cache_features

    path, train, _ = finetune_task
    feats = tmp_path / "feats.h5"
    cache_features(load_model(path), load_data(train), feats, taps=["hidden3"])
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--features",
            feats,
            "--unfreeze",
            "all",
            "-o",
            tmp_path / "t.keras",
        ]
    )
    assert result.exit_code == 2
    assert "--features cannot be used with --unfreeze all" in result.stderr


def test_cache_from_another_model_is_refused(finetune_task, tmp_path):
    from reuse import load_data
    from reuse.cache import cache_features

    path, train, _ = finetune_task
    other = mlp(n_in=8, hidden=5, units=12, n_out=4, seed=99)
    for name in ("hidden1", "hidden2", "hidden3"):
        other.get_layer(name).trainable = False
    feats = tmp_path / "other.h5"
    cache_features(other, load_data(train), feats, taps=["hidden3"])
    result = cli(
        ["finetune", path, "--data", train, "--features", feats, "-o", tmp_path / "t.keras"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:") and "cache" in result.stderr.lower()


def test_tensorboard_logs(finetune_task, tmp_path):
    path, train, _ = finetune_task
    logs = tmp_path / "tb"
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "-o",
            tmp_path / "t.keras",
            "--epochs",
            "1",
            "--tensorboard",
            logs,
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert list(logs.rglob("events.out.tfevents.*"))
