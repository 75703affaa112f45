"""Mixed precision: float16 / bfloat16 training with float32 outputs and loss scaling, and
half-size float16 feature caches read back as float32."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import CacheMismatch, UsageError
from tests.helpers import classification_data, mlp, save_npz


def test_policies_keep_outputs_float32_and_come_back():
    from reuse.surgery.precision import set_mixed_precision

    model = mlp(n_in=8, hidden=2, units=6)
    set_mixed_precision(model, "float16")
    assert model.get_layer("hidden1").compute_dtype == "float16"
    assert model.get_layer("hidden1").variable_dtype == "float32"
    assert model.get_layer("output").compute_dtype == "float32"
    assert "float32" in str(model(np.zeros((2, 8), "float32")).dtype)
    set_mixed_precision(model, None)
    assert model.get_layer("hidden1").compute_dtype == "float32"


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_finetune_in_mixed_precision(precision, monkeypatch):
    import keras

    from reuse.training import stage
    from reuse.training.finetune import finetune

    seen = []
    original = stage.run_stage

    def spy(transfer, plan, *args, **kwargs):
        result = original(transfer, plan, *args, **kwargs)
        seen.append(
            (
                type(transfer.model.optimizer).__name__,
                transfer.model.get_layer("hidden2").compute_dtype,
            )
        )
        return result

    monkeypatch.setattr("reuse.training.runner.run_stage", spy)
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    result = finetune(
        mlp(n_in=8, hidden=3, units=12, n_out=4, seed=1),
        (x[:60], y[:60]),
        val=(x[60:], y[60:]),
        unfreeze="all",
        epochs=3,
        seed=0,
        mixed_precision=precision,
    )
    scaled = "LossScaleOptimizer" if precision == "float16" else "Adam"
    assert seen == [(scaled, precision)]
    assert all(np.isfinite(row["loss"]) for row in result.history)
    assert result.model.get_layer("hidden2").compute_dtype == "float32"  # saved as float32
    assert isinstance(result.model.optimizer, keras.optimizers.Optimizer)


def test_mixed_precision_option_is_checked():
    from reuse.training.options import FinetuneOptions

    with pytest.raises(UsageError, match="--mixed-precision must be float16 or bfloat16"):
        FinetuneOptions(mixed_precision="int8").check()
    with pytest.raises(UsageError, match="layer-lr-decay"):
        FinetuneOptions(mixed_precision="float16", layer_lr_decay=2.6, unfreeze="gradual").check()


def test_float16_cache_is_half_size_and_reads_as_float32(tmp_path):
    from reuse.cache import cache_features, open_cache
    from reuse.data.dataset import load_data

    model = mlp(n_in=8, hidden=3, units=64, n_out=3, seed=1)
    x, y = classification_data(n=400, n_in=8, n_classes=3)
    data = load_data(save_npz(tmp_path / "d.npz", x, y))
    cache_features(model, data, tmp_path / "f32.h5", taps=["hidden2"])
    cache_features(model, data, tmp_path / "f16.h5", taps=["hidden2"], dtype="float16")
    cache_features(model, data, tmp_path / "mp.h5", taps=["hidden2"], mixed_precision="float16")
    assert model.get_layer("hidden1").compute_dtype == "float32"  # given back as it was
    size32, size16 = ((tmp_path / n).stat().st_size for n in ("f32.h5", "f16.h5"))
    assert size16 < 0.6 * size32
    with (
        open_cache(tmp_path / "f32.h5", model=model) as c32,
        open_cache(tmp_path / "f16.h5", model=model) as c16,
        open_cache(tmp_path / "mp.h5", model=model) as cmp,
    ):
        assert c16.dataset("hidden2").dtype == np.float16
        a32, a16, amp = c32.array("hidden2"), c16.array("hidden2"), cmp.array("hidden2")
        assert a16.dtype == np.float32 and amp.dtype == np.float32
        np.testing.assert_allclose(a16, a32, rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(amp, a32, rtol=5e-2, atol=5e-2)
        assert c16.verify(model, data, n=5) == 5  # float16 tolerance
        x16, _ = next(c16.batches("hidden2", 32))
        assert x16.dtype == np.float32
    with pytest.raises(UsageError, match="--dtype must be float32 or float16"):
        cache_features(model, data, tmp_path / "x.h5", taps=["hidden2"], dtype="int8")


def test_resume_refuses_another_dtype(tmp_path, monkeypatch):
    from reuse.cache import cache_features
    from reuse.cache.layout import part_path
    from reuse.data.dataset import load_data

    model = mlp(n_in=8, hidden=3, units=16, n_out=3, seed=1)
    x, y = classification_data(n=64, n_in=8, n_classes=3)
    data = load_data(save_npz(tmp_path / "d.npz", x, y))
    out = tmp_path / "f.h5"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("reuse.cache.writer.spot_check", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cache_features(model, data, out, taps=["hidden2"], batch_size=16)
    monkeypatch.undo()
    assert part_path(out).exists()
    with pytest.raises(CacheMismatch, match="different tap dtypes"):
        cache_features(
            model, data, out, taps=["hidden2"], batch_size=16, resume=True, dtype="float16"
        )
