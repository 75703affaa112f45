"""reuse.formats.model_io.load_model: every model format, SavedModel exports, legacy tf.keras
files."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers import mlp


def test_load_export_folder_as_frozen_block(tmp_path):
    import keras

    from reuse.formats.model_io import load_model

    model = mlp()
    folder = tmp_path / "exported"
    model.export(folder, verbose=False)
    loaded = load_model(folder)
    block = [layer for layer in loaded.layers if isinstance(layer, keras.layers.TFSMLayer)]
    assert len(block) == 1 and not block[0].trainable and not loaded.trainable_weights
    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def _legacy_savedmodel(tmp_path, tf_keras):
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [layers.Dense(3, input_shape=(4,), name="d1"), layers.Dense(2, name="d2")], name="legacy"
    )
    folder = tmp_path / "legacy_sm"
    model.save(folder, save_format="tf")
    return model, folder


def test_legacy_savedmodel_without_tf_keras_names_pip_command(tmp_path, monkeypatch):
    from reuse.formats.model_io import TF_KERAS_INSTALL

    folder = tmp_path / "legacy_sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "keras_metadata.pb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # import tf_keras now raises ImportError
    from reuse.core.errors import ModelLoadError
    from reuse.formats.model_io import load_model

    with pytest.raises(ModelLoadError) as err:
        load_model(folder)
    assert "legacy tf.keras SavedModel" in str(err.value)
    assert f"install it with: {TF_KERAS_INSTALL}" in str(err.value)


def test_legacy_savedmodel_loads_with_layers(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    from reuse.formats.model_io import load_model

    legacy, folder = _legacy_savedmodel(tmp_path, tf_keras)
    model = load_model(folder)
    assert [layer.name for layer in model.layers] == ["d1", "d2"]
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(np.asarray(model(x)), legacy(x).numpy(), rtol=1e-5, atol=1e-6)


def test_load_model_formats(tmp_path):
    from reuse.formats.model_io import load_model

    model = mlp()
    x = np.ones((2, 8), "float32")
    expected = np.asarray(model(x))
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "m.weights.h5")
    mlp(seed=1).save(tmp_path / "arch.keras")
    for loaded in (
        load_model(tmp_path / "m.keras"),
        load_model(tmp_path / "m.h5"),
        load_model(tmp_path / "m.weights.h5", arch=tmp_path / "arch.keras"),
    ):
        np.testing.assert_allclose(np.asarray(loaded(x)), expected, rtol=1e-6)


def test_load_tf_keras2_h5(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    from reuse.formats.model_io import load_model

    layers = tf_keras.layers
    legacy = tf_keras.Sequential(
        [layers.Dense(3, input_shape=(4,), name="d1"), layers.BatchNormalization(name="bn")]
    )
    legacy.save(tmp_path / "old.h5", save_format="h5")
    model = load_model(tmp_path / "old.h5")
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(np.asarray(model(x)), legacy(x).numpy(), rtol=1e-5, atol=1e-6)


def test_weights_h5_without_arch_is_refused_by_load_model(tmp_path):
    from reuse.core.errors import ModelLoadError
    from reuse.formats.model_io import load_model

    mlp().save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(ModelLoadError, match="--arch"):
        load_model(tmp_path / "m.weights.h5")
