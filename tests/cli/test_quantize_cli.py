"""`reuse quantize`: int8 weights through Keras, size and accuracy before and after, and a file
that loads back."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import classification_data, cli, last_record, mlp, save_npz


@pytest.mark.slow
def test_quantize_reports_size_and_accuracy_and_reloads(tmp_path):
    import keras

    mlp(n_in=32, hidden=3, units=128, n_out=3, seed=0).save(tmp_path / "m.keras")
    x, y = classification_data(n=60, n_in=32, n_classes=3)
    save_npz(tmp_path / "d.npz", x, y)
    result = cli(
        [
            "quantize",
            tmp_path / "m.keras",
            "-o",
            tmp_path / "q.keras",
            "--data",
            tmp_path / "d.npz",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["quantized"] == ["hidden1", "hidden2", "hidden3", "output"]
    assert rec["bytes_after"] < 0.5 * rec["bytes_before"]
    assert set(rec["metrics"]) == {"loss_before", "accuracy_before", "loss_after", "accuracy_after"}
    assert "Warning" not in result.stderr
    reloaded = keras.saving.load_model(tmp_path / "q.keras")
    assert reloaded.get_layer("hidden1").quantization_mode == "int8"
    assert reloaded.get_layer("hidden1")._kernel.dtype == "int8"
    want = keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0)
    assert np.abs(reloaded.predict(x, verbose=0) - want).max() == rec["max_abs_diff"] < 0.05


def test_quantize_refuses_a_model_without_dense_layers(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)).save(tmp_path / "c.keras")
    result = cli(["quantize", tmp_path / "c.keras", "-o", tmp_path / "q.keras"])
    assert result.exit_code == 2
    assert "no Dense, EinsumDense or Embedding layer" in result.stderr
