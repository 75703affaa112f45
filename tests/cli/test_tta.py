"""`evaluate --tta K` and `predict --tta K`: outputs averaged over K augmented views + the clean row."""

import json

import numpy as np
import pytest

from tests.helpers import cli, mlp, save_npz


@pytest.fixture
def model_and_data(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = np.clip(rng.uniform(0, 1, size=(30, 64)) + (np.arange(64) < 8) * y[:, None] * 0.4, 0, 1)
    data = save_npz(tmp_path / "test.npz", x.astype("float32"), y)
    model = tmp_path / "m.keras"
    mlp(n_in=64, hidden=2, units=8).save(model)
    return model, data


def test_evaluate_reports_accuracy_with_and_without_tta(model_and_data):
    model, data = model_and_data
    args = ["evaluate", model, "--data", data, "--json", "--tta", "3", "--augment", "shift:0.1"]
    result = cli([*args, "--image-shape", "8,8,1", "--seed", "1"])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])["metrics"]
    assert {"accuracy", "accuracy_tta", "loss", "loss_tta"} <= set(metrics)
    assert metrics["loss_tta"] != metrics["loss"]
    again = cli([*args, "--image-shape", "8,8,1", "--seed", "1"])
    assert json.loads(again.stdout.strip().splitlines()[-1])["metrics"] == metrics


def test_predict_tta_averages_views(model_and_data, tmp_path):
    import keras

    model, data = model_and_data
    out = tmp_path / "p.npy"
    result = cli(
        ["predict", model, "--data", data, "-o", out, "--tta", "2", "--augment", "noise:0.05"]
    )
    assert result.exit_code == 0, result.stderr
    probs = np.load(out)
    clean = keras.models.load_model(model).predict(np.load(data)["x"], verbose=0)
    assert probs.shape == clean.shape
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probs, clean)


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--tta", "2"], "--tta needs an augmentation"),
        (["--augment", "shift"], "add --tta K"),
        (["--tta", "2", "--augment", "mixup"], "single rows"),
        # an --image-shape with no --tta was silently ignored
        (["--image-shape", "8,8,1"], "--image-shape here is for test-time augmentation"),
    ],
)
def test_tta_errors_are_one_line_before_any_work(model_and_data, extra, says):
    model, data = model_and_data
    result = cli(["evaluate", model, "--data", data, *extra])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0]
