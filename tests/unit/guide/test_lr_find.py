"""reuse.guide.lr_find: the sweep restores weights and flags, and trains from a feature cache."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import copy_weights


@pytest.mark.slow
def test_lr_find_restores_weights_and_flags(tuning_task):
    from reuse import load_data, load_model
    from reuse.guide.lr_find import lr_find
    from reuse.training.options import FinetuneOptions

    _, path, train, _ = tuning_task
    base = load_model(path)
    before, flags = copy_weights(base), [layer.trainable for layer in base.layers]
    # unfreeze all: the sweep trains the reused layers too, so there is something to restore
    result = lr_find(
        base,
        load_data(train),
        options=FinetuneOptions(unfreeze="all", seed=0),
        start=1e-4,
        end=100,
        steps=40,
    )
    for a, b in zip(before, base.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert [layer.trainable for layer in base.layers] == flags
    assert result.rule == "valley" and set(result.suggestions) == {"valley", "steepest"}
    assert result.lrs == sorted(result.lrs) and 1e-4 <= result.suggestion <= result.lrs[-1]
    assert result.stopped_early and len(result.lrs) < 40  # lr 100 blows the loss up
    assert min(result.smoothed) < result.smoothed[0]  # the loss did drop somewhere


def test_lr_find_trains_from_the_cache(tuning_task, tmp_path, monkeypatch):
    from reuse import load_data, load_model
    from reuse.cache import cache_features
    from reuse.guide.lr_find import lr_find

    _, path, train, _ = tuning_task
    base = load_model(path)
    cache_features(base, load_data(train), tmp_path / "feats.h5", taps=["hidden2"])

    def boom(*args, **kwargs):
        raise AssertionError("a layer below the cached tap ran")

    for name in ("hidden1", "hidden2"):
        monkeypatch.setattr(base.get_layer(name), "call", boom)
    result = lr_find(base, None, features=tmp_path / "feats.h5", start=1e-4, end=1, steps=10)
    assert result.tap == "hidden2" and len(result.lrs) > 0


def _result(losses):
    from reuse.guide.lr_find import LrFindResult

    losses = [float(v) for v in losses]
    lrs = list(np.geomspace(1e-7, 10, len(losses)))
    return LrFindResult(lrs=lrs, losses=losses, smoothed=losses, suggestion=1e-3, rule="valley")


def test_flat_tells_batch_noise_from_a_fall():
    """A flat sweep with 4.5% batch-to-batch noise (what 20 steps at lr 1e-12 measured on the
    tuning task) reads as flat (single steps as levels read 2 of 30 seeds as a fall); a 30%
    fall and a valley that ends in a blow-up read as falls."""
    rng = np.random.default_rng(0)
    short = [_result(1.2 * (1 + 0.045 * rng.standard_normal(20))).flat for _ in range(500)]
    assert np.mean(short) >= 0.97
    assert all(_result(1.2 * (1 + 0.045 * rng.standard_normal(100))).flat for _ in range(200))
    falling = 1.2 * np.linspace(1.0, 0.7, 20) * (1 + 0.045 * rng.standard_normal(20))
    assert not _result(falling).flat and _result(falling).fall > 0.15
    curve = np.concatenate([np.linspace(2.3, 0.5, 95), [0.8, 1.5, 2.6, 4.0, 6.0]])
    blown = _result(curve * (1 + 0.02 * rng.standard_normal(100)))
    assert not blown.flat and blown.noise < 0.05
    assert _result(np.full(20, 1.3)).flat  # no fall at all, no noise
