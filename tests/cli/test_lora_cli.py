"""`reuse finetune --lora` and `reuse lora merge` from the command line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.helpers import cli, last_record, shell


@pytest.fixture(scope="module")
def lora_cli(tmp_path_factory, request):
    """(folder, record of a merged run, record of an adapters-only run) on tuning_task-like files."""
    from tests.helpers import classification_data, mlp, save_npz

    tmp = tmp_path_factory.mktemp("lora_cli")
    mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1).save(tmp / "base.keras")
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    save_npz(tmp / "train.npz", x[:60], y[:60])
    save_npz(tmp / "valid.npz", x[60:], y[60:])
    common = [
        "finetune",
        tmp / "base.keras",
        "--data",
        tmp / "train.npz",
        "--val",
        tmp / "valid.npz",
        "--lora",
        "2",
        "--lora-layers",
        "hidden[34]",
        "--epochs",
        "3",
        "--seed",
        "0",
        "--json",
    ]
    merged = cli([*common, "-o", tmp / "tuned.keras"])
    assert merged.exit_code == 0, merged.stderr
    adapters = cli([*common, "--lora-save", "adapters", "-o", tmp / "run.adapters.npz"])
    assert adapters.exit_code == 0, adapters.stderr
    np.save(tmp / "x.npy", x)
    return tmp, last_record(merged.stdout), last_record(adapters.stdout), merged.stderr


def test_record_and_stage_table_give_trained_params(lora_cli):
    _, rec, _, stderr = lora_cli
    assert rec["lora"]["layers"] == ["hidden3", "hidden4"]
    assert rec["lora"]["trainable_params"] == 135
    assert rec["lora"]["full_finetune_params"] > 4 * rec["lora"]["trainable_params"]
    assert rec["stages"][0]["params"] == 135
    assert "params" in stderr and "135" in stderr


def test_adapters_only_writes_a_small_file_that_lora_merge_applies(lora_cli):
    import keras

    tmp, merged_rec, rec, _ = lora_cli
    assert "model" not in rec and rec["adapters"].endswith("run.adapters.npz")
    assert (tmp / "run.adapters.npz").stat().st_size < (tmp / "tuned.keras").stat().st_size / 4
    assert (tmp / "run.history.csv").exists()
    result = cli(
        [
            "lora",
            "merge",
            tmp / "base.keras",
            tmp / "run.adapters.npz",
            "-o",
            tmp / "m.keras",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["command"] == "lora merge"
    x = np.load(tmp / "x.npy")
    np.testing.assert_allclose(
        keras.saving.load_model(tmp / "m.keras").predict(x, verbose=0),
        keras.saving.load_model(tmp / "tuned.keras").predict(x, verbose=0),
        atol=1e-6,
    )


def test_lora_merge_refuses_another_base(lora_cli, tmp_path):
    from tests.helpers import mlp

    tmp = lora_cli[0]
    mlp(n_in=8, hidden=4, units=12, n_out=4, seed=7).save(tmp_path / "other.keras")
    result = cli(
        [
            "lora",
            "merge",
            tmp_path / "other.keras",
            tmp / "run.adapters.npz",
            "-o",
            tmp_path / "m.keras",
        ]
    )
    assert result.exit_code == 1
    assert "trained on another base" in result.stderr


def test_adapters_need_an_npz_output(lora_cli):
    tmp = lora_cli[0]
    result = cli(
        [
            "finetune",
            tmp / "base.keras",
            "--data",
            tmp / "train.npz",
            "--lora",
            "2",
            "--lora-save",
            "adapters",
            "-o",
            tmp / "x.keras",
        ]
    )
    assert result.exit_code != 0 and "writes a .npz file" in result.stderr


@pytest.mark.slow
def test_plain_keras_loads_the_merged_model_without_reuse(lora_cli):
    tmp = lora_cli[0]
    import keras

    want = keras.saving.load_model(tmp / "tuned.keras").predict(np.load(tmp / "x.npy"), verbose=0)
    np.save(tmp / "want.npy", want)
    script = (
        "import sys, numpy as np, keras; m = keras.saving.load_model('tuned.keras'); "
        "assert not any(getattr(l, 'lora_enabled', False) for l in m.layers); "
        "np.testing.assert_allclose(m.predict(np.load('x.npy'), verbose=0), np.load('want.npy'), atol=1e-6); "
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] == 'reuse')))"
    ).replace("import sys", "import json, sys")
    result = shell(f'{sys.executable} -c "{script}"', tmp, env_extra={"PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_lora_merge_help_loads_no_tensorflow(tmp_path):
    result = shell("python -X importtime -m reuse lora merge --help", tmp_path)
    assert result.returncode == 0 and "reuse lora merge" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"tensorflow", "keras", "torch", "h5py"}
