"""reuse.cache: cache_features on nested models, and open_cache's trust checks (verify,
fingerprints)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.helpers import cli, frozen_mlp, save_npz


@pytest.mark.slow
def test_nested_application_cache_with_escaped_name(tmp_path, nested):
    from reuse.cache import cache_features, open_cache
    from reuse.core.errors import CutError
    from reuse.data.dataset import load_data

    model = nested
    x = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype("float32")
    data = load_data(save_npz(tmp_path / "img.npz", x, np.arange(6) % 3))
    with pytest.raises(CutError, match="nearest valid cut points"):
        cache_features(model, data, tmp_path / "f.h5", taps=["block_2_project_BN"])
    result = cache_features(
        model, data, tmp_path / "f.h5", taps=["gap", "block_2_add"], batch_size=4
    )
    base = model.layers[0].name
    assert result.taps == [f"{base}/block_2_add", "gap"] and result.verified == 3
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert f"{base}%2Fblock_2_add" in f["features"]
        assert f[f"features/{base}%2Fblock_2_add"].attrs["tap"] == f"{base}/block_2_add"
    with open_cache(tmp_path / "f.h5", model=model) as cache:
        assert cache.array("block_2_add").shape == (6, 8, 8, 8)


def test_verify_detects_tampered_row(tmp_path, frozen_path, data_path):
    import keras

    from reuse.cache import open_cache
    from reuse.core.errors import CacheMismatch
    from reuse.data.dataset import load_data

    out = tmp_path / "f.h5"
    assert cli(["cache-features", frozen_path, "--data", data_path, "-o", out]).exit_code == 0
    model = keras.models.load_model(frozen_path)
    data = load_data(data_path)
    with open_cache(out, model=model) as cache:
        assert cache.verify(model, data, n=5) == 5
    with h5py.File(out, "r+") as f:
        f["features/hidden3"][42] = f["features/hidden3"][42] + 0.01
    with open_cache(out, model=model) as cache:
        with pytest.raises(CacheMismatch, match="row 42 of tap 'hidden3'"):
            cache.verify(model, data, rows=[3, 42, 77])


def test_open_cache_refuses_other_model(tmp_path, frozen_path, data_path):
    import keras

    from reuse.cache import fingerprint, open_cache
    from reuse.core.errors import CacheMismatch

    out = tmp_path / "f.h5"
    assert cli(["cache-features", frozen_path, "--data", data_path, "-o", out]).exit_code == 0
    model = keras.models.load_model(frozen_path)
    with open_cache(out, model=model) as cache:
        assert cache.taps == ["hidden3"] and len(cache) == 100
        assert cache.fingerprint == fingerprint(model, ["hidden3"])["fingerprint"]
        assert cache.labels.shape == (100,) and cache.indices[-1] == 99
        xs = [bx for bx, _ in cache.batches("hidden3", 32, shuffle=True, seed=0)]
        assert sum(len(b) for b in xs) == 100
    # Training layers above the tap does not matter; unfreezing does not either.
    model.get_layer("hidden4").kernel.assign(model.get_layer("hidden4").kernel + 1.0)
    model.get_layer("hidden2").trainable = True
    open_cache(out, model=model).close()
    # One weight below the tap changes: refused, naming the layer and the rebuild command.
    kernel = np.asarray(model.get_layer("hidden2").kernel)
    kernel[0, 0] += 1e-3
    model.get_layer("hidden2").kernel.assign(kernel)
    with pytest.raises(CacheMismatch) as err:
        open_cache(out, model=model)
    assert "the weights of hidden2 differ" in str(err.value)
    assert (
        f"reuse cache-features {frozen_path.resolve()} --data {data_path.resolve()} --at hidden3"
        in str(err.value)
    )
    # Another architecture (hidden2 with another activation).
    other = frozen_mlp()
    other.get_layer("hidden2").activation = keras.activations.relu
    with pytest.raises(CacheMismatch, match="architecture up to the taps differs"):
        open_cache(out, model=_reconfigured(other))
    # A model without the tap.
    keras.utils.set_random_seed(0)
    small = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, name="hidden1")])
    with pytest.raises(CacheMismatch, match="tap names differ"):
        open_cache(out, model=small)


def _reconfigured(model):
    import keras

    config = model.get_config()
    for layer in config["layers"]:
        if layer["config"].get("name") == "hidden2":
            layer["config"]["activation"] = "relu"
    clone = keras.Sequential.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def test_cache_features_takes_a_model_path_and_a_data_path(frozen_task, tmp_path):
    """`reuse.cache_features` reads paths as `reuse.finetune` does, and records the model's."""
    import reuse
    from reuse.cache import open_cache

    path, train, _ = frozen_task
    made = reuse.cache_features(str(path), train, tmp_path / "f.h5", taps=["hidden2"])
    assert made.rows == 100
    with open_cache(made.path) as cache:
        assert cache.model_path == str(path.resolve())
        direct = reuse.load_model(path).get_layer("hidden2")
        assert cache.array("hidden2").shape == (100, direct.units)
