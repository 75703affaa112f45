"""`finetune --distribute`: mirrored training on 2 logical CPU devices, and two multi-worker
processes over loopback, each equal to a one-device run within float tolerance.

Every run is a process of its own: the CPU is split, and workers join, before TensorFlow
initializes its devices.
"""

from __future__ import annotations

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

ATOL = 1e-5


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A base model with hidden1-2 frozen, a cache of its hidden1 and hidden2 taps, data."""
    d = tmp_path_factory.mktemp("distribute")
    frozen_mlp(upto=2).save(d / "base.keras")
    save_npz(d / "train.npz", *classification_data(n=96))
    save_npz(d / "val.npz", *classification_data(n=32, seed=1))
    made = _reuse(
        d,
        [
            "cache-features",
            "base.keras",
            "--data",
            "train.npz",
            "--at",
            "hidden1,hidden2",
            "-o",
            "feats.h5",
        ],
    )
    assert made.returncode == 0, made.stderr
    return d


def _reuse(cwd, args, timeout=300, **env):
    return subprocess.run(
        [sys.executable, "-m", "reuse", *args],
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


GRADUAL = [
    "finetune", "base.keras", "--data", "train.npz", "--val", "val.npz", "--features", "feats.h5",
    "--unfreeze", "gradual", "--layer-lr-decay", "0.5", "--epochs", "3", "--seed", "0",
    "--batch-size", "16", "--json",
]  # fmt: skip


def _assert_close(a, b):
    assert_weights_close(a, b, ATOL)


@pytest.fixture(scope="module")
def one_device(task):
    """The uninterrupted one-device run (checkpointed) every distributed run is compared with."""
    run = _reuse(task, [*GRADUAL, "-o", "one.keras", "--checkpoint-dir", "ck_one"])
    assert run.returncode == 0, run.stderr
    return task / "one.keras", json.loads(run.stdout.splitlines()[-1])


def test_mirrored_on_two_cpu_devices_equals_one_device(task, one_device):
    # Gradual stages from the cache, discriminative learning rates in stage 1.
    run = _reuse(
        task, [*GRADUAL, "-o", "two.keras", "--distribute", "mirrored", "--cpu-devices", "2"]
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout.splitlines()[-1])
    one_path, one_record = one_device
    assert [s["trainable"] for s in record["stages"]] == [
        s["trainable"] for s in one_record["stages"]
    ]
    assert len(record["stages"]) >= 2  # a stage with unfrozen layers at a lower rate ran
    for key, value in one_record["metrics"].items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-4), key
    _assert_close(saved_weights(task / "two.keras"), saved_weights(one_path))


def test_mirrored_resume_after_a_kill_equals_the_uninterrupted_run(task, one_device):
    args = [sys.executable, "-m", "reuse", *GRADUAL, "-o", "resumed.keras", "--checkpoint-dir", "ck_two",
            "--distribute", "mirrored", "--cpu-devices", "2"]  # fmt: skip
    kill_when(
        args,
        task / "ck_two" / "state.json",
        lambda state: state["global_epoch"] >= 2,
        cwd=task,
        env=subprocess_env(REUSE_TEST_EPOCH_DELAY="1.5"),
    )
    assert not (task / "resumed.keras").exists()
    resumed = subprocess.run(
        args + ["--resume"],
        cwd=task,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at stage" in resumed.stderr
    _assert_close(saved_weights(task / "resumed.keras"), saved_weights(one_device[0]))


def _unshare_works() -> bool:
    try:
        return (
            subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_two_workers_over_loopback_equal_one_process(task, one_device):
    if not _unshare_works():
        pytest.skip("needs `unshare -n` (root): a network namespace holding only loopback")
    workers = ["localhost:23456", "localhost:23457"]
    script = ["ip link set lo up 2>/dev/null || true"]
    for i in range(2):
        config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        )
        args = " ".join([*GRADUAL, "-o", "multi.keras", "--distribute", "multi-worker"])
        script.append(
            f"TF_CONFIG='{config}' {sys.executable} -m reuse {args} > w{i}.out 2> w{i}.err &"
        )
    script.append("wait")
    run = subprocess.run(
        ["unshare", "-n", "bash", "-c", "\n".join(script)],
        cwd=task,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, (task / "w0.err").read_text()[-2000:] + (
        task / "w1.err"
    ).read_text()[-2000:]
    record = json.loads((task / "w0.out").read_text().splitlines()[-1])
    assert record["model"].endswith("multi.keras")
    assert "not the chief" in (task / "w1.err").read_text()
    assert (task / "w1.out").read_text().strip() == ""  # the chief alone writes and records
    _assert_close(saved_weights(task / "multi.keras"), saved_weights(one_device[0]))


def test_library_finetune_clones_a_model_made_outside_the_strategy(tmp_path):
    """`finetune(model, strategy=...)` with a model built outside the scope: it trains a
    replicated clone (the caller's model is left as it was) and matches a run without one."""
    import tensorflow as tf

    import reuse
    from reuse.training.distribute import ReplicatedSteps

    x, y = classification_data(n=64)
    plain = reuse.finetune(frozen_mlp(upto=2), (x, y), epochs=2, seed=0, batch_size=16)
    outside = frozen_mlp(upto=2)
    before = [w.copy() for w in outside.get_weights()]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    seen = []
    original = ReplicatedSteps.__init__

    def spy(self, *args, **kwargs):
        seen.append(self)
        original(self, *args, **kwargs)

    ReplicatedSteps.__init__ = spy
    try:
        mirrored = reuse.finetune(
            frozen_mlp(upto=2), (x, y), epochs=2, seed=0, batch_size=16, strategy=strategy
        )
    finally:
        ReplicatedSteps.__init__ = original
    assert seen, "the replicated steps ran"
    assert mirrored.model._distribute_strategy is strategy
    _assert_close(mirrored.model.get_weights(), plain.model.get_weights())
    for a, b in zip(outside.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
