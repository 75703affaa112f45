"""`reuse inspect` on models: fast path vs full Keras load, SavedModels, every model format."""

from __future__ import annotations

import json
import sys
import zipfile

import numpy as np
import pytest

from tests.helpers import cli, convnet, mlp, nested_application, residual, shell


def _frozen_nested_sequential():
    import keras

    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(5, name="a"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="inner",
    )
    inner.trainable = False
    return keras.Sequential(
        [keras.Input((8,)), inner, keras.layers.Dense(3, name="out")], name="outer"
    )


def _assert_same(path):
    from reuse.inspection import inspect_loaded
    from reuse.inspection.fast import try_inspect

    fast = try_inspect(path, verify_weights=True)
    assert fast is not None and fast.fast_path
    assert try_inspect(path).rows == fast.rows
    full = inspect_loaded(path)
    assert [r["name"] for r in fast.rows] == [r["name"] for r in full.rows]
    for a, b in zip(fast.rows, full.rows, strict=True):
        for key in ("index", "class", "params", "trainable", "depth"):
            assert a[key] == b[key], (a, b)
        if a["output_shape"] is not None:
            assert a["output_shape"] == b["output_shape"], (a, b)
    assert fast.totals == full.totals
    return fast


@pytest.mark.parametrize(
    "build, suffix",
    [
        (lambda: mlp(bn=True), ".keras"),
        (lambda: mlp(bn=True), ".h5"),
        (residual, ".keras"),
        (convnet, ".keras"),
        (_frozen_nested_sequential, ".keras"),
        (_frozen_nested_sequential, ".h5"),
    ],
)
def test_fast_path_matches_keras(tmp_path, build, suffix):
    path = tmp_path / f"m{suffix}"
    build().save(path)
    fast = _assert_same(path)
    assert all(r["output_shape"] is not None for r in fast.rows)


def test_fast_path_matches_keras_nested_application(tmp_path):
    path = tmp_path / "transfer.keras"
    nested_application().save(path)
    fast = _assert_same(path)
    inner = [r for r in fast.rows if r["name"].startswith("mobilenetv2_0.35_32/")]
    assert len(inner) > 50 and fast.totals["frozen_params"] > fast.totals["trainable_params"] > 0


def test_fast_path_matches_tf_keras2_h5(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    layers = tf_keras.layers
    inner = tf_keras.Sequential(
        [layers.Dense(5, name="a", input_shape=(8,)), layers.BatchNormalization(name="bn")],
        name="inner",
    )
    inner.trainable = False
    inp = layers.Input((8,), name="inp")
    joined = layers.Concatenate(name="cat")([inner(inp), layers.Dense(4, name="br")(inp)])
    model = tf_keras.Model(
        inp, layers.Dense(3, activation="softmax", name="out")(joined), name="tfk"
    )
    path = tmp_path / "tfk2.h5"
    model.save(path, save_format="h5")
    fast = _assert_same(path)
    assert [r["name"] for r in fast.rows] == [
        "inp",
        "inner",
        "inner/a",
        "inner/bn",
        "br",
        "cat",
        "out",
    ]
    conv = tf_keras.Sequential(
        [
            layers.Conv2D(3, 3, input_shape=(10, 10, 1), name="c"),
            layers.BatchNormalization(name="bn"),
            layers.MaxPooling2D(name="p"),
            layers.Flatten(name="f"),
            layers.Dense(2, name="d"),
        ]
    )
    conv.save(tmp_path / "conv2.h5", save_format="h5")
    _assert_same(tmp_path / "conv2.h5")


def test_fast_path_declines_what_it_cannot_reproduce(tmp_path):
    import keras

    from reuse.inspection.fast import try_inspect

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(
        keras.layers.Dense(3, name="d")(inp)
    )
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    assert try_inspect(tmp_path / "lam.keras") is None
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert try_inspect(tmp_path / "junk.keras") is None
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as z:
        z.writestr("other.txt", "x")
    assert try_inspect(tmp_path / "noconfig.keras") is None


def test_cli_inspect_keras_does_not_import_tensorflow(tmp_path, mlp_path):
    result = shell(f"python -X importtime -m reuse inspect {mlp_path} --format json", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "tensorflow" not in imported and "keras" not in imported
    assert json.loads(result.stdout)["rows"][0]["name"] == "hidden1"


def test_savedmodel_export_signatures_and_variables(tmp_path):
    folder = tmp_path / "exported"
    mlp().export(folder, verbose=False)
    result = cli(["inspect", folder, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "savedmodel"
    serve = data["info"]["signatures"]["serve"]
    assert serve["inputs"] == [{"name": "features", "shape": [None, 8], "dtype": "float32"}]
    assert serve["outputs"][0]["shape"] == [None, 3]
    kernels = [r for r in data["rows"] if r["variable"] == "kernel"]
    assert [r["layer"].rsplit("/", 1)[-1] for r in kernels][:2] == ["hidden1", "hidden2"]
    assert data["total_params"] == mlp().count_params()
    table = cli(["inspect", folder])
    assert (
        "signature serve(features: float32 (None, 8)) -> output_0: float32 (None, 3)"
        in table.stdout
    )


def test_load_export_folder_as_frozen_block(tmp_path):
    from reuse.formats.model_io import load_model

    model = mlp()
    folder = tmp_path / "exported"
    model.export(folder, verbose=False)
    loaded = load_model(folder)
    block = [layer for layer in loaded.layers if type(layer).__name__ == "TFSMLayer"]
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


def test_inspect_weights_h5_with_arch(tmp_path):
    model = mlp()
    model.save(tmp_path / "arch.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    result = cli(
        [
            "inspect",
            tmp_path / "m.weights.h5",
            "--arch",
            tmp_path / "arch.keras",
            "--format",
            "json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["rows"]][-1] == "output"
    wrong = cli(["inspect", tmp_path / "m.weights.h5", "--arch", tmp_path / "nope.keras"])
    assert (
        wrong.exit_code == 1 and wrong.stderr.startswith("Error:") and "nope.keras" in wrong.stderr
    )


def test_weights_h5_without_arch_is_refused_by_load_model(tmp_path):
    from reuse.core.errors import ModelLoadError
    from reuse.formats.model_io import load_model

    mlp().save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(ModelLoadError, match="--arch"):
        load_model(tmp_path / "m.weights.h5")


def test_keras_zip_without_config_is_one_line_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("readme.txt", "hello")
    result = cli(["inspect", tmp_path / "other.keras"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no config.json" in lines[0]
