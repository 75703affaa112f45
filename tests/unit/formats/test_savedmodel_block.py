"""SavedModelBlock: one output of a SavedModel signature as a frozen layer, whose path is
stored absolute and relative to the saved model file, so a tuned model reloads from another
working directory and after its folder moves, without --unsafe."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from reuse.core.errors import ModelLoadError, UnsafeModelError


@pytest.fixture
def project(tmp_path):
    """tmp/project/sm: a SavedModel returning {"a": (None, 2), "b": (None, 5)}; tmp/project/out/."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="h")(inp)
    model = keras.Model(
        inp, {"a": keras.layers.Dense(2, name="a")(h), "b": keras.layers.Dense(5, name="b")(h)}
    )
    root = tmp_path / "project"
    (root / "out").mkdir(parents=True)
    model.export(root / "sm", verbose=False)
    return root


def _tuned(base):
    import keras

    return keras.Model(base.inputs, keras.layers.Dense(1, name="head")(base.outputs[0]))


def test_output_key_picks_one_output_and_names_the_others(project, monkeypatch):
    from reuse.formats.model_io import load_model
    from reuse.formats.outputs import output_names

    monkeypatch.chdir(project)
    whole = load_model("sm")
    assert output_names(whole) == ["a", "b"]
    one = load_model("sm", output_key="b")
    assert [tuple(t.shape) for t in one.outputs] == [(None, 5)]
    with pytest.raises(ModelLoadError, match=r"no output 'c' \(outputs: a, b\)"):
        load_model("sm", output_key="c")


def test_a_tuned_model_reloads_from_elsewhere_and_after_a_move(project, tmp_path, monkeypatch):
    from reuse.formats.model_io import load_model, save_model

    monkeypatch.chdir(project)
    tuned = _tuned(load_model("sm", output_key="b"))
    save_model(tuned, "out/tuned.keras")
    config = json.loads(zipfile.ZipFile(project / "out/tuned.keras").read("config.json"))
    block = next(lay for lay in config["config"]["layers"] if lay["config"].get("output_key"))
    assert block["config"]["relative_filepath"] == "../sm"
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    want = np.asarray(tuned(x))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    np.testing.assert_allclose(
        np.asarray(load_model(project / "out/tuned.keras")(x)), want, atol=1e-6
    )
    moved = shutil.move(project, tmp_path / "moved")
    np.testing.assert_allclose(
        np.asarray(load_model(f"{moved}/out/tuned.keras")(x)), want, atol=1e-6
    )
    shutil.rmtree(f"{moved}/sm")
    with pytest.raises(ModelLoadError, match="SavedModel block cannot be found"):
        load_model(f"{moved}/out/tuned.keras")


def test_a_plain_tfsmlayer_is_not_called_a_lambda(project, monkeypatch):
    import keras

    from reuse.formats.model_io import load_model

    monkeypatch.chdir(project)
    inp = keras.Input((4,))
    layer = keras.layers.TFSMLayer("sm", call_endpoint="serve", trainable=False)
    keras.Model(inp, layer(inp)["a"]).save("out/plain.keras")
    with pytest.raises(UnsafeModelError) as err:
        load_model("out/plain.keras")
    assert "TFSMLayer" in str(err.value) and "Lambda" not in str(err.value)
    assert isinstance(load_model("out/plain.keras", unsafe=True).layers[1], keras.layers.TFSMLayer)
