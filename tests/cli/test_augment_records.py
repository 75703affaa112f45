"""The pipeline record says which augmentation a command used: `augment`, `image_shape`, `seed`
(the names finetune writes) from lr-find, check, finetune and pretrain, plus `tta` from
evaluate / predict --tta. A command that trains owns these fields (it drops the upstream
values); evaluate / predict replace them only when they ran --tta, and an upstream spec stays
the default of their --tta that the command line overrides."""

import json

import numpy as np
import pytest

from tests.helpers import cli, last_record, mlp, save_npz


@pytest.fixture
def base_and_data(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = np.clip(rng.uniform(0, 1, size=(30, 64)) + (np.arange(64) < 8) * y[:, None] * 0.4, 0, 1)
    data = save_npz(tmp_path / "train.npz", x.astype("float32"), y)
    base = tmp_path / "base.keras"
    mlp(n_in=64, hidden=2, units=8).save(base)
    return base, data


def _upstream(model, **fields) -> str:
    """A record as an earlier command wrote it (finetune with an augmentation)."""
    record = {"reuse": "0", "command": "finetune", "model": str(model), **fields}
    return json.dumps(record) + "\n"


STALE = {"augment": "zoom:0.3", "image_shape": [4, 16, 1], "seed": 99, "tta": 5}


def test_lr_find_records_the_augmentation_it_swept_with(base_and_data):
    base, data = base_and_data
    args = ["lr-find", base, "--data", data, "--steps", "8", "--json", "--seed", "3"]
    record = last_record(
        cli([*args, "--augment", "rotate:0.04,shift", "--image-shape", "8,8,1"]).stdout
    )
    # canonical spec (the pipeline's order, defaults filled in), as finetune writes it
    assert record["augment"] == "shift:0.1,rotate:0.04"
    assert record["image_shape"] == [8, 8, 1] and record["seed"] == 3


def test_a_training_command_drops_the_upstream_augmentation_it_did_not_use(base_and_data):
    base, data = base_and_data
    result = cli(
        ["lr-find", "-", "--data", data, "--steps", "8", "--json"],
        input=_upstream(base, **STALE),
    )
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert not {"augment", "image_shape", "seed"} & set(record)
    assert record["tta"] == 5  # not lr-find's field: it passes through


def test_check_records_the_augmentation_of_its_checks(base_and_data):
    base, data = base_and_data
    result = cli(
        ["check", "-", "--data", data, "--subset", "6", "--steps", "5", "--json"]
        + ["--augment", "noise:0.05", "--seed", "1"],
        input=_upstream(base, **STALE),
    )
    assert result.exit_code in (0, 3), result.stderr  # 3: a check failed on this tiny run
    record = last_record(result.stdout)
    assert record["augment"] == "noise:0.05" and record["seed"] == 1
    assert "image_shape" not in record  # upstream's dropped: this run used none


def test_evaluate_tta_records_k_spec_shape_and_seed(base_and_data):
    base, data = base_and_data
    record = last_record(
        cli(
            ["evaluate", base, "--data", data, "--json", "--tta", "2", "--augment", "shift:0.1"]
            + ["--image-shape", "8,8,1", "--seed", "4"]
        ).stdout
    )
    assert record["tta"] == 2 and record["augment"] == "shift:0.1"
    assert record["image_shape"] == [8, 8, 1] and record["seed"] == 4


def test_tta_takes_the_upstream_spec_as_its_default_and_records_it(base_and_data, tmp_path):
    base, data = base_and_data
    upstream = _upstream(base, augment="shift:0.1", image_shape=[8, 8, 1], seed=7)
    result = cli(
        ["predict", "-", "--data", data, "-o", tmp_path / "p.npy", "--tta", "2", "--json"],
        input=upstream,
    )
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert record["tta"] == 2 and record["augment"] == "shift:0.1"
    assert record["image_shape"] == [8, 8, 1]
    assert record["seed"] == 0  # the TTA seed used (--seed, default 0), not finetune's
    # the command line overrides the upstream spec, and the record says so
    result = cli(
        ["evaluate", "-", "--data", data, "--tta", "2", "--augment", "noise:0.05", "--json"],
        input=upstream,
    )
    record = last_record(result.stdout)
    assert record["augment"] == "noise:0.05" and record["image_shape"] == [8, 8, 1]


def test_without_tta_the_model_s_training_spec_passes_through(base_and_data):
    base, data = base_and_data
    upstream = _upstream(base, augment="shift:0.1", image_shape=[8, 8, 1], seed=7, tta=3)
    result = cli(["evaluate", "-", "--data", data, "--json"], input=upstream)
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert record["augment"] == "shift:0.1" and record["seed"] == 7
    assert "tta" not in record  # this evaluate ran no TTA


def test_finetune_records_its_seed_beside_the_spec(base_and_data, tmp_path):
    base, data = base_and_data
    result = cli(
        ["finetune", "-", "--data", data, "--epochs", "1", "--json", "-o", tmp_path / "t.keras"]
        + ["--augment", "noise:0.05", "--seed", "2"],
        input=_upstream(base, **STALE),
    )
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert record["augment"] == "noise:0.05" and record["seed"] == 2
    assert "image_shape" not in record
