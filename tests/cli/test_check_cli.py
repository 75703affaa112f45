"""`reuse check`: exit 3 with the reasons on a broken model, exit 0 when nothing fails."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli


def _dead_relu_model(path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                12,
                activation="relu",
                name="dead",
                bias_initializer=keras.initializers.Constant(-100.0),
            ),
            keras.layers.Dense(6, activation="tanh", name="squash"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ]
    )
    model.save(path)
    return path


def test_check_fails_with_exit_code_3_and_says_why(tuning_task, tmp_path):
    from reuse.core import exit_codes

    _, _, train, _ = tuning_task
    bad = _dead_relu_model(tmp_path / "dead.keras")
    result = cli(["check", bad, "--data", train, "--steps", "30", "--json"])
    assert result.exit_code == exit_codes.CHECK_FAILED
    record = json.loads(result.stdout)
    status = {c["name"]: c for c in record["checks"]}
    assert record["passed"] is False
    assert status["activations"]["status"] == "fail" and "dead" in status["activations"]["reason"]
    assert status["overfit_tiny"]["status"] == "fail"
    assert status["gradients"]["status"] == "warn" and "vanishing" in status["gradients"]["reason"]
    assert "check(s) failed" in result.stderr


@pytest.mark.slow
def test_check_cli_exit_0_when_nothing_fails(tuning_task):
    _, path, train, _ = tuning_task
    result = cli(["check", path, "--data", train, "--json", "--seed", "0"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["passed"] is True and all(
        c["status"] in ("pass", "warn") for c in record["checks"]
    )
