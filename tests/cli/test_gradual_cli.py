"""`reuse finetune --unfreeze gradual`: the stage table and report from a cache, and --resume after
a SIGKILL."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli


@pytest.mark.slow
def test_gradual_from_cache_keeps_untouched_layers_and_reports_stages(frozen_task, tmp_path):
    path, train, valid = frozen_task
    feats = tmp_path / "feats.h5"
    made = cli(
        [
            "cache-features",
            path,
            "--data",
            train,
            "--at",
            "hidden2,hidden3,hidden4,hidden5",
            "-o",
            feats,
            "--json",
        ]
    )
    assert made.exit_code == 0, made.stderr
    out = tmp_path / "tuned.keras"
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--val",
            valid,
            "--features",
            feats,
            "--unfreeze",
            "gradual",
            "--max-unfreeze",
            "2",
            "--unfreeze-step",
            "1",
            "--epochs",
            "4",
            "--early-stopping",
            "2",
            "--seed",
            "0",
            "-o",
            out,
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    stages = record["stages"]
    assert stages[0]["trainable"] == "head only" and stages[0]["tap"] == "hidden5"
    if len(stages) > 1:
        assert stages[1]["tap"] == "hidden4" and stages[1]["lr"] == pytest.approx(
            stages[0]["lr"] / 2
        )
    assert "stages" in result.stderr  # the stage table on stderr
    report = json.loads((tmp_path / "tuned.report.json").read_text())
    assert report["stages"] == stages
    history = json.loads((tmp_path / "tuned.history.json").read_text())
    assert {row["stage"] for row in history} == {s["stage"] for s in stages}
    # Layers no stage unfroze are bit-identical.
    import keras

    base, tuned = keras.models.load_model(path), keras.models.load_model(out)
    for name in ("hidden1", "hidden2", "hidden3"):
        for a, b in zip(
            base.get_layer(name).get_weights(), tuned.get_layer(name).get_weights(), strict=True
        ):
            assert np.array_equal(a, b), name


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_resume_after_sigkill_in_a_later_stage(frozen_task, tmp_path):
    """Kill a real run mid-way through stage 1 or later; --resume continues with the right
    trainable set (the unfrozen layers really train after the resume)."""
    import subprocess
    import sys

    import keras

    from tests.helpers import kill_when, subprocess_env

    path, train, valid = frozen_task
    ck = tmp_path / "ck"
    out = tmp_path / "tuned.keras"
    args = [
        sys.executable,
        "-m",
        "reuse",
        "finetune",
        str(path),
        "--data",
        str(train),
        "--val",
        str(valid),
        "--unfreeze",
        "gradual",
        "--max-unfreeze",
        "3",
        "--epochs",
        "6",
        "--early-stopping",
        "50",
        "--stage-lr-div",
        "1",
        "--lr",
        "0.003",
        "--seed",
        "0",
        "--checkpoint-dir",
        str(ck),
        "-o",
        str(out),
        "--json",
    ]
    env = subprocess_env(REUSE_TEST_EPOCH_DELAY="0.4")
    state_file = ck / "state.json"
    kill_when(
        args,
        state_file,
        lambda state: state["stage"] >= 1 and 1 <= state["stage_epochs_done"] < 6,
        env=env,
    )
    assert not out.exists()
    state = json.loads(state_file.read_text())
    stage, trainable = state["stage"], state["trainable"]
    assert stage >= 1 and trainable
    saved = np.load(ck / state["weights"])
    resumed = subprocess.run(
        args + ["--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at stage {stage}" in resumed.stderr
    record = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert [s["stage"] for s in record["stages"]][: stage + 1] == list(range(stage + 1))
    tuned = keras.models.load_model(out)
    kept = [s for s in record["stages"] if s["kept"]]
    last_trainable = (
        [] if kept[-1]["trainable"] == "head only" else kept[-1]["trainable"].split(", ")
    )
    for i in range(1, 6):
        name = f"hidden{i}"
        assert tuned.get_layer(name).trainable == (name in last_trainable), name
    # The layers unfrozen at the kill kept training after the resume (the last checkpoint's
    # weights differ from the killed one's), and layers no stage unfroze did not move.
    final_state = json.loads(state_file.read_text())
    final = np.load(ck / final_state["weights"])

    def kernel(npz, name):  # transfer-model weight order: hidden1 (kernel, bias), hidden2, ...
        return npz[f"arr_{2 * (int(name.removeprefix('hidden')) - 1)}"]

    assert final_state["global_epoch"] > state["global_epoch"]
    assert not np.array_equal(kernel(final, trainable[0]), kernel(saved, trainable[0]))
    for name in ("hidden1", "hidden2"):
        assert np.array_equal(kernel(final, name), kernel(saved, name))
