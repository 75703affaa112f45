"""Every command that feeds data to a model follows one shape rule (reuse.data.shapes).

Channels-first data, shape (N, 3, 8, 8), given to a channels-last model, input (8, 8, 3),
has as many values per row as the model wants; reshaping it would scramble every image. Each
command refuses it with one Error line that names both shapes and the transpose that fits,
and writes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cli, convnet, save_npz

TRANSPOSE = "np.transpose(x, (0, 2, 3, 1))"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shape_rule")
    model = folder / "rgb.keras"
    convnet(size=8, channels=3).save(model)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 3, 8, 8)).astype("float32")  # channels-first
    y = (np.arange(12) % 3).astype("int64")
    return {
        "folder": folder,
        "model": model,
        "first": save_npz(folder / "first.npz", x, y),
        "last": save_npz(folder / "last.npz", np.transpose(x, (0, 2, 3, 1)), y),
    }


def _refused(result, folder, before: set) -> None:
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "input shape (3, 8, 8) does not fit the model's input (8, 8, 3)" in lines[0]
    assert "channels-first" in lines[0] and TRANSPOSE in lines[0]
    assert "Traceback" not in result.stderr
    assert set(folder.iterdir()) == before, "a refused run left files behind"


def test_predict_refuses_channels_first_data(work):
    before = set(work["folder"].iterdir())
    out = work["folder"] / "preds.npy"
    result = cli(["predict", work["model"], "--data", work["first"], "-o", out])
    _refused(result, work["folder"], before)
    # The same rows, transposed as the hint says, are predicted.
    result = cli(["predict", work["model"], "--data", work["last"], "-o", out])
    assert result.exit_code == 0, result.stderr
    assert np.load(out).shape == (12, 3)
    out.unlink()


def test_evaluate_refuses_channels_first_data(work):
    before = set(work["folder"].iterdir())
    result = cli(["evaluate", work["model"], "--data", work["first"], "--json"])
    _refused(result, work["folder"], before)


def test_finetune_refuses_channels_first_data(work):
    before = set(work["folder"].iterdir())
    out = work["folder"] / "tuned.keras"
    result = cli(["finetune", work["model"], "--data", work["first"], "-o", out, "--epochs", "1"])
    _refused(result, work["folder"], before)


def test_cache_features_refuses_channels_first_data(work):
    before = set(work["folder"].iterdir())
    out = work["folder"] / "feats.h5"
    result = cli(
        ["cache-features", work["model"], "--data", work["first"], "--at", "conv1", "-o", out]
    )
    _refused(result, work["folder"], before)
