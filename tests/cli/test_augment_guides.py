"""lr-find and check train on augmented rows when given --augment, as finetune would."""

import json

import numpy as np
import pytest

from tests.helpers import cli, mlp, save_npz


@pytest.fixture
def base_and_data(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 3
    x = np.clip(rng.uniform(0, 1, size=(40, 64)) + (np.arange(64) < 8) * y[:, None] * 0.4, 0, 1)
    data = save_npz(tmp_path / "train.npz", x.astype("float32"), y)
    base = tmp_path / "base.keras"
    mlp(n_in=64, hidden=2, units=8).save(base)
    return base, data


def _record(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_lr_find_sweeps_augmented_batches(base_and_data):
    import keras

    import reuse
    from reuse.training.options import FinetuneOptions

    base, data = base_and_data
    ds = reuse.load_data(data)
    model = keras.models.load_model(base)
    plain = reuse.lr_find(model, ds, options=FinetuneOptions(seed=0), steps=30)
    augmented = reuse.lr_find(
        model,
        ds,
        options=FinetuneOptions(seed=0, augment="shift:0.2,noise:0.1", image_shape=(8, 8, 1)),
        steps=30,
    )
    assert (
        plain.lrs == augmented.lrs[: len(plain.lrs)]
        or augmented.lrs == plain.lrs[: len(augmented.lrs)]
    )
    assert plain.losses[:5] != augmented.losses[:5]
    record = _record(
        cli(
            [
                "lr-find",
                base,
                "--data",
                data,
                "--steps",
                "30",
                "--json",
                "--augment",
                "shift",
                "--image-shape",
                "8,8,1",
            ]
        )
    )
    assert record["lr"] > 0


def test_check_runs_with_augmentation(base_and_data):
    base, data = base_and_data
    record = _record(
        cli(["check", base, "--data", data, "--seed", "0", "--json", "--augment", "noise:0.05"])
    )
    assert any(row["name"] == "overfit_tiny" for row in record["checks"])


@pytest.mark.parametrize("command", ["lr-find", "check"])
def test_image_augmentation_on_flat_rows_is_refused(base_and_data, command):
    base, data = base_and_data
    result = cli([command, base, "--data", data, "--augment", "rotate"])
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--image-shape" in errors[0]
