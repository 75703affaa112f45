"""Records that tell the truth: the stage table lists what trains, `stage_epoch` counts per
stage, `--layer-lr-decay` applies in every mode, `--l1`/`--l2` reach the saved config,
`freeze` records a cut the model can be split at, and a model trained with any `--schedule`
or `--label-smoothing` loads in plain Keras in a process that never imports reuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import classification_data, cli, residual, save_npz


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A reused MLP with Dropout and BatchNormalization between its layers, and 60 rows."""
    import keras

    folder = tmp_path_factory.mktemp("records")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(12, activation="relu", name="hidden1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.Dropout(0.2, name="drop1"),
            keras.layers.Dense(12, activation="relu", name="hidden2"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ]
    )
    model.get_layer("hidden1").trainable = False
    path = folder / "base.keras"
    model.save(path)
    x, y = classification_data(60)
    return folder, path, save_npz(folder / "train.npz", x, y)


def test_stage_table_lists_only_layers_that_train(task):
    """--unfreeze all: Dropout has nothing to train, BatchNormalization stays frozen."""
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    _, path, train = task
    base = load_model(path)
    bn_before = [np.array(w) for w in base.get_layer("bn1").get_weights()]
    result = finetune(base, load_data(train), epochs=1, seed=0, unfreeze="all")
    row = result.stages[0].row()
    assert row["trainable"] == "hidden2, hidden1"  # top down, as gradual stages list them
    assert not result.model.get_layer("bn1").trainable
    for a, b in zip(bn_before, result.model.get_layer("bn1").get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_stage_epoch_restarts_in_each_stage(task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    _, path, train = task
    result = finetune(
        load_model(path), load_data(train), epochs=2, seed=0, unfreeze="gradual", early_stopping=0
    )
    stages = [row["stage"] for row in result.history]
    assert len(set(stages)) >= 2
    for stage in set(stages):
        counts = [row["stage_epoch"] for row in result.history if row["stage"] == stage]
        assert counts == list(range(1, len(counts) + 1)), result.history
    assert [row["epoch"] for row in result.history] == list(range(1, len(stages) + 1))


def test_layer_lr_decay_applies_with_unfreeze_all(task):
    """One stage: the top reused layer that learns gets lr / F, the next lr / F^2."""
    from reuse import load_model
    from reuse.training import plans
    from reuse.training.options import FinetuneOptions
    from reuse.training.transfer import build_transfer_model

    _, path, _ = task
    options = FinetuneOptions(unfreeze="all", layer_lr_decay=2.0)
    options.check()
    transfer = build_transfer_model(load_model(path), np.arange(6) % 3, options)
    (plan,) = plans.single_stage(transfer, list(transfer.reused), None, options)
    assert plan.lr_scales == {"hidden2": 0.5, "hidden1": 0.25}


def test_l2_on_unfrozen_reused_layers_is_in_the_saved_config(task, tmp_path):
    import keras

    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    _, path, train = task
    result = finetune(load_model(path), load_data(train), epochs=1, seed=0, unfreeze="all", l2=0.01)
    out = tmp_path / "tuned.keras"
    result.save(out)
    saved = keras.models.load_model(out, compile=False)
    for name in ("hidden1", "hidden2"):
        config = saved.get_layer(name).get_config()["kernel_regularizer"]
        assert config and config["config"]["l2"] == pytest.approx(0.01), name


def test_freeze_records_a_valid_cut(tmp_path):
    """`freeze --upto X` where a skip connection crosses X records the valid cut below it."""
    residual().save(tmp_path / "res.keras")
    target = tmp_path / "f.keras"
    result = cli(["freeze", tmp_path / "res.keras", "--upto", "branch_a", "-o", target, "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["cut"] == "stem"
    assert "skip connection crosses branch_a" in result.stderr
    from reuse.formats.model_io import load_model
    from reuse.surgery.cuts import valid_cut_points

    assert record["cut"] in valid_cut_points(load_model(target))


TUNED = {
    "one-cycle": ["--schedule", "one-cycle"],
    "natural-exp": ["--schedule", "natural-exp:decay_rate=0.5"],
    "power-1": ["--schedule", "power:c=1"],
    "power-2": ["--schedule", "power:c=2"],
    "smoothing": ["--label-smoothing", "0.1"],
}


@pytest.mark.slow
def test_tuned_models_load_in_plain_keras_in_a_fresh_process(task, tmp_path):
    """Plain `keras.models.load_model` in a process that never imports reuse loads each model
    and predicts what reuse's model predicts."""
    _, path, train = task
    x = classification_data(60)[0][:5]
    expected = {}
    for name, args in TUNED.items():
        out = tmp_path / f"{name}.keras"
        result = cli(["finetune", path, "--data", train, "--epochs", "1", "--seed", "0",
                      "-o", out, *args])  # fmt: skip
        assert result.exit_code == 0, result.stderr
        from reuse.formats.model_io import load_model

        expected[str(out)] = load_model(out).predict(x, verbose=0).tolist()
    script = (
        "import json, sys\n"
        "import numpy as np, keras\n"
        "paths, x = json.loads(sys.argv[1]), np.array(json.loads(sys.argv[2]), 'float32')\n"
        "out = {p: keras.models.load_model(p).predict(x, verbose=0).tolist() for p in paths}\n"
        "assert not any(m == 'reuse' or m.startswith('reuse.') for m in sys.modules)\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(list(expected)), json.dumps(x.tolist())],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for p, values in expected.items():
        np.testing.assert_allclose(got[p], values, rtol=1e-5, atol=1e-6)
