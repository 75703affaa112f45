"""LoRA fine-tuning: Keras' adapters on the reused layers, frozen base weights, merged and
adapter-only saves, and training from a feature cache."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import ModelLoadError, UsageError
from tests.helpers import classification_data, mlp


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """(folder, base path, result, x): rank-2 adapters on hidden3 and hidden4 of a saved MLP."""
    import keras

    from reuse.training.finetune import finetune

    tmp = tmp_path_factory.mktemp("lora")
    base = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1)
    base.save(tmp / "base.keras")
    before = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in base.layers}
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    model = keras.saving.load_model(tmp / "base.keras")
    result = finetune(
        model,
        (x[:60], y[:60]),
        val=(x[60:], y[60:]),
        lora=2,
        lora_layers="hidden[34]",
        epochs=4,
        seed=0,
    )
    return tmp, before, result, x


def test_base_weights_stay_bit_identical_and_adapters_train(lora_run):
    _, before, result, _ = lora_run
    adapted = {
        layer.name: layer for layer in result.model.layers if getattr(layer, "lora_enabled", False)
    }
    assert sorted(adapted) == ["hidden3", "hidden4"]
    for name, layer in adapted.items():
        np.testing.assert_array_equal(np.asarray(layer._kernel), before[name][0])
        np.testing.assert_array_equal(np.asarray(layer.bias), before[name][1])
        assert np.abs(np.asarray(layer.lora_kernel_b)).max() > 0  # B starts at zero
    for name in ("hidden1", "hidden2"):
        for got, want in zip(result.model.get_layer(name).get_weights(), before[name], strict=True):
            np.testing.assert_array_equal(got, want)


def test_params_trained_against_full_finetuning(lora_run):
    _, _, result, _ = lora_run
    # adapters: 2 x (12x2 + 2x12); head: 12x3 + 3
    assert result.lora["trainable_params"] == 2 * (24 + 24) + 39
    assert result.stages[0].params == result.lora["trainable_params"]
    assert result.lora["full_finetune_params"] == 4 * (12 * 12) - 12 * 12 + 8 * 12 + 4 * 12 + 39
    assert result.lora["layers"] == ["hidden3", "hidden4"]


def test_merged_model_is_plain_and_predicts_the_same(lora_run):
    from reuse.training.lora import merged_model

    _, _, result, x = lora_run
    plain = merged_model(result.model)
    assert not any(getattr(layer, "lora_enabled", False) for layer in plain.layers)
    assert "lora_rank" not in plain.get_layer("hidden3").get_config()
    np.testing.assert_allclose(
        plain.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6
    )


def test_adapter_file_merges_into_the_base(lora_run):
    import keras

    from reuse.training.lora import merge_adapters, save_adapters

    tmp, _, result, x = lora_run
    path = save_adapters(tmp / "run.adapters.npz", result.transfer, base_name="base.keras")
    assert path.stat().st_size < 8_000
    merged = merge_adapters(keras.saving.load_model(tmp / "base.keras"), path)
    np.testing.assert_allclose(
        merged.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6
    )
    other = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=5)
    with pytest.raises(ModelLoadError, match="another base"):
        merge_adapters(other, path)
    with pytest.raises(ModelLoadError, match="not a LoRA adapter file"):
        merge_adapters(other, tmp / "base.keras")


def test_lora_trains_from_a_cached_tap(tmp_path):
    from reuse.cache import cache_features
    from reuse.data.dataset import load_data
    from reuse.training.finetune import finetune
    from tests.helpers import save_npz

    model = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1)
    x, y = classification_data(n=60, n_in=8, n_classes=3, seed=2)
    data = load_data(save_npz(tmp_path / "d.npz", x, y))
    cache_features(model, data, tmp_path / "f.h5", taps=["hidden2"], verify=0)
    result = finetune(
        model,
        data,
        features=tmp_path / "f.h5",
        lora=2,
        lora_layers="hidden[34]",
        epochs=2,
        seed=0,
        val_split=0.2,
    )
    assert result.used_cache and result.stages[0].tap == "hidden2"
    with pytest.raises(UsageError, match="lie above"):
        finetune(
            mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1),
            data,
            features=tmp_path / "f.h5",
            lora=2,
            epochs=1,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lora": 2, "unfreeze": "gradual"}, "cannot be combined with --unfreeze gradual"),
        ({"lora": 0}, "--lora must be a rank >= 1"),
        ({"lora_layers": "hidden1"}, "--lora-layers needs --lora"),
        ({"lora": 2, "lora_save": "both"}, "--lora-save must be merged or adapters"),
        ({"lora": 2, "lora_layers": "("}, "not a valid regular expression"),
        ({"lora": 2, "lora_alpha": -1.0}, "--lora-alpha must be > 0"),
    ],
)
def test_bad_lora_options_are_refused(kwargs, message):
    from reuse.training.options import FinetuneOptions

    with pytest.raises(UsageError, match=message):
        FinetuneOptions(**kwargs).check()


def test_layers_that_match_nothing_are_refused():
    from reuse.training.finetune import finetune

    x, y = classification_data(n=30, n_in=8, n_classes=3)
    with pytest.raises(UsageError, match="no reused layer matches --lora-layers"):
        finetune(mlp(n_in=8, hidden=2, units=6), (x, y), lora=2, lora_layers="conv.*", epochs=1)
