"""Combinations of `reuse finetune` options, run as real processes:

- `--lora` with `--checkpoint-dir`, SIGKILLed mid-run, then `--resume`: the same final weights
  as an uninterrupted run, the base kernels bit-identical;
- `--mixed-precision float16|bfloat16` with `--distribute mirrored --cpu-devices 2`: the loss
  is finite and goes down, the saved model computes in float32, and it matches one device;
- `--lora` with `--distribute mirrored --cpu-devices 2`: it matches one device.

Every distributed run is a process of its own (the CPU is split before TensorFlow starts).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import (
    assert_weights_close,
    classification_data,
    frozen_mlp,
    kill_when,
    save_npz,
    saved_weights,
    subprocess_env,
)

BASE = ["--data", "train.npz", "--val", "val.npz", "--epochs", "4", "--seed", "0",
        "--batch-size", "16", "--json"]  # fmt: skip
LORA = ["--lora", "2", "--lora-layers", "hidden[34]"]
TWO_DEVICES = ["--distribute", "mirrored", "--cpu-devices", "2"]
# float16 keeps ~3 decimal digits, bfloat16 ~2: one device and two differ by the order of
# their float sums, rounded at that precision (measured: 4e-6 and 4e-5 after 4 epochs).
HALF_ATOL = {"float16": 1e-3, "bfloat16": 1e-2}


def _finetune(cwd, *args, timeout=300):
    run = subprocess.run(
        [sys.executable, "-m", "reuse", "finetune", "base.keras", *BASE, *args],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    d = tmp_path_factory.mktemp("combos")
    frozen_mlp(upto=2).save(d / "base.keras")
    save_npz(d / "train.npz", *classification_data(n=96))
    save_npz(d / "val.npz", *classification_data(n=32, seed=1))
    return d


@pytest.fixture(scope="module")
def lora_one(task):
    """The uninterrupted one-device LoRA run."""
    _finetune(task, *LORA, "-o", "lora_one.keras")
    return task / "lora_one.keras"


def test_lora_resume_after_sigkill_equals_the_uninterrupted_run(task, lora_one):
    args = [sys.executable, "-m", "reuse", "finetune", "base.keras", *BASE, *LORA,
            "-o", "lora_resumed.keras", "--checkpoint-dir", "ck_lora"]  # fmt: skip
    state = kill_when(
        args,
        task / "ck_lora" / "state.json",
        lambda state: state["global_epoch"] >= 2,
        cwd=task,
        env=subprocess_env(REUSE_TEST_EPOCH_DELAY="1.5"),
    )
    assert not (task / "lora_resumed.keras").exists()
    killed_at = state["global_epoch"]
    assert 2 <= killed_at < 4
    resumed = subprocess.run(
        args + ["--resume"],
        cwd=task,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at stage 0, epoch {killed_at + 1}" in resumed.stderr
    record = json.loads(resumed.stdout.splitlines()[-1])
    assert record["lora"]["layers"] == ["hidden3", "hidden4"]
    got, want = saved_weights(task / "lora_resumed.keras"), saved_weights(lora_one)
    assert_weights_close(got, want, 1e-5)
    # The merged model's untouched layers are the base's, bit for bit.
    base = saved_weights(task / "base.keras")
    for i in (0, 1, 2, 3, 8, 9):  # hidden1, hidden2, hidden5 (no adapters)
        np.testing.assert_array_equal(got[i], base[i])


def test_lora_on_two_mirrored_devices_equals_one_device(task, lora_one):
    record = _finetune(task, *LORA, *TWO_DEVICES, "-o", "lora_two.keras")
    assert record["lora"]["trainable_params"] == 2 * (6 * 2 + 2 * 6) + 6 * 3 + 3
    assert_weights_close(saved_weights(task / "lora_two.keras"), saved_weights(lora_one), 1e-5)


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_mixed_precision_on_two_mirrored_devices_matches_one_device(task, precision):
    import keras

    args = ["--unfreeze", "all", "--mixed-precision", precision]
    one = _finetune(task, *args, "-o", f"{precision}_one.keras")
    two = _finetune(task, *args, *TWO_DEVICES, "-o", f"{precision}_two.keras")
    assert two["mixed_precision"] == precision
    with open(task / f"{precision}_two.history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    model = keras.models.load_model(task / f"{precision}_two.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    x = np.load(task / "val.npz")["x"]
    assert model.predict(x, verbose=0).dtype == np.float32
    atol = HALF_ATOL[precision]
    assert_weights_close(model.get_weights(), saved_weights(task / f"{precision}_one.keras"), atol)
    assert two["metrics"]["loss"] == pytest.approx(one["metrics"]["loss"], abs=atol)
