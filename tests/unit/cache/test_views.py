"""The augmented feature cache: K views of every row in one pass, refused when the spec differs."""

import numpy as np
import pytest

from reuse.core.errors import CacheMismatch, UsageError
from tests.helpers import mlp


def _data(n=24, seed=0):
    from reuse.data import load_data

    return n, seed, load_data


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = rng.uniform(0, 1, size=(30, 64)).astype("float32")
    x[:, :8] += y[:, None] * 0.4
    np.savez(tmp_path / "train.npz", x=np.clip(x, 0, 1), y=y)
    model = mlp(n_in=64, hidden=3, units=8)
    for layer in model.layers[:2]:
        layer.trainable = False
    return tmp_path, model


def _cache(tmp_path, model, name="v.h5", **kw):
    from reuse.cache import cache_features
    from reuse.data import load_data

    data = load_data(tmp_path / "train.npz")
    kw.setdefault("augment", "shift:0.1,rotate:0.05")
    kw.setdefault("views", 3)
    return cache_features(
        model,
        data,
        tmp_path / name,
        taps=["hidden1", "hidden2"],
        image_shape=(8, 8, 1),
        seed=4,
        **kw,
    )


def test_views_are_stored_beside_the_clean_features(setup):
    from reuse.cache import open_cache

    tmp_path, model = setup
    result = _cache(tmp_path, model)
    assert result.augment == "shift:0.1,rotate:0.05" and result.views == 3
    with open_cache(result.path) as cache:
        clean = cache.array("hidden2")
        views = cache.views("hidden2")
        assert views.shape == (3, *clean.shape)
        assert cache.augment_spec == "shift:0.1,rotate:0.05" and cache.view_count == 3
        assert not np.allclose(views[0], clean) and not np.allclose(views[0], views[1])


def test_views_depend_on_the_seed_only(setup):
    from reuse.cache import open_cache

    tmp_path, model = setup
    a, b = _cache(tmp_path, model, "a.h5"), _cache(tmp_path, model, "b.h5", batch_size=7)
    with open_cache(a.path) as ca, open_cache(b.path) as cb:
        # Same seed and same groups of rows (one group here) give the same views.
        np.testing.assert_array_equal(ca.views("hidden1"), cb.views("hidden1"))


def test_mixup_cannot_be_cached_and_views_need_a_spec(setup):
    tmp_path, model = setup
    with pytest.raises(UsageError, match="mixup"):
        _cache(tmp_path, model, augment="shift,mixup:0.2")
    with pytest.raises(UsageError, match="--views"):
        _cache(tmp_path, model, augment="shift", views=0)


def test_an_image_shape_without_augment_is_refused_not_ignored(setup):
    """cache-features --image-shape 8,8,1 with no --augment used to write a plain cache,
    silently ignoring the flag (finetune and lr-find refuse it)."""
    tmp_path, model = setup
    with pytest.raises(UsageError, match="no --augment was given"):
        _cache(tmp_path, model, augment=None, views=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


def test_views_that_cannot_fit_on_the_disk_are_refused_before_anything_is_written(setup):
    """--views 10**12 used to start writing, and went on until the disk was full."""
    tmp_path, model = setup
    with pytest.raises(UsageError, match="--views 1000000000000 needs") as err:
        _cache(tmp_path, model, views=10**12)
    assert "lower --views" in err.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


def test_finetune_trains_on_views_and_refuses_another_spec(setup):
    import reuse

    tmp_path, model = setup
    result = _cache(tmp_path, model)
    data = reuse.load_data(tmp_path / "train.npz")
    tuned = reuse.finetune(
        model,
        data,
        features=result.path,
        epochs=4,
        seed=0,
        augment="shift:0.1,rotate:0.05",
        image_shape=(8, 8, 1),
    )
    assert tuned.used_cache and len(tuned.history) == 4
    with pytest.raises(CacheMismatch, match="--augment shift:0.2") as err:
        reuse.finetune(
            model, data, features=result.path, epochs=1, augment="shift:0.2", image_shape=(8, 8, 1)
        )
    assert "--views" in err.value.hint


def test_mixup_alone_mixes_the_clean_features_of_a_cache_without_views(setup):
    """mixup has no per-row part to cache, so a plain cache is all it needs. It was refused as
    "--augment none trains on augmented views", with a rebuild command (`--augment none
    --views 8`) that cache-features itself refuses."""
    import reuse
    from reuse.cache import cache_features

    tmp_path, model = setup
    data = reuse.load_data(tmp_path / "train.npz")
    plain = cache_features(model, data, tmp_path / "plain.h5", taps=["hidden1", "hidden2"])
    common = dict(features=plain.path, epochs=2, seed=0)
    clean = reuse.finetune(model, data, **common)
    mixed = reuse.finetune(model, data, augment="mixup", **common)
    assert mixed.used_cache and len(mixed.history) == 2
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(clean.model.get_weights(), mixed.model.get_weights(), strict=True)
    )
    with pytest.raises(UsageError, match="cutmix pastes patches"):
        reuse.finetune(model, data, augment="cutmix", image_shape=(8, 8, 1), **common)


@pytest.mark.slow
def test_mixup_alone_trains_the_raw_rows_of_a_cache_with_input_views(setup):
    """The stage below every tap of an --input-views cache: mixup alone mixes the raw rows.
    It used to ask for input views made with '--augment none', after the cached stages."""
    import reuse

    tmp_path, model = setup
    result = _cache(tmp_path, model, input_views=True)
    data = reuse.load_data(tmp_path / "train.npz")
    tuned = reuse.finetune(
        model, data, features=result.path, augment="mixup", unfreeze="gradual", epochs=1, seed=0
    )
    assert tuned.used_cache and [s.tap for s in tuned.stages][-1] is None


def test_views_train_differently_from_the_clean_cache(setup):
    import reuse

    tmp_path, model = setup
    result = _cache(tmp_path, model)
    data = reuse.load_data(tmp_path / "train.npz")
    common = dict(features=result.path, epochs=3, seed=0)
    plain = reuse.finetune(model, data, **common)
    viewed = reuse.finetune(
        model, data, augment="shift:0.1,rotate:0.05", image_shape=(8, 8, 1), **common
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(plain.model.get_weights(), viewed.model.get_weights(), strict=True)
    )


def test_input_views_are_the_augmented_rows_the_tap_views_were_computed_from(setup):
    from reuse.cache import open_cache
    from reuse.surgery import cuts

    tmp_path, model = setup
    result = _cache(tmp_path, model, input_views=True)
    with open_cache(result.path) as cache:
        assert cache.has_input_views
        rows = cache.input_views()
        assert rows.shape == (3, 30, 64) and rows.dtype == np.float32
        bottom = cuts.bottom_model(model, ["hidden1"])
        for k in range(3):
            np.testing.assert_allclose(
                np.asarray(bottom(rows[k])), cache.views("hidden1")[k], rtol=1e-5, atol=1e-6
            )
        assert "--input-views" in cache.rebuild_command()


def test_input_views_need_views(setup):
    tmp_path, model = setup
    with pytest.raises(UsageError, match="--augment SPEC --views K"):
        _cache(tmp_path, model, augment=None, views=0, input_views=True)


@pytest.mark.slow
def test_stages_below_every_tap_train_on_input_views_not_on_the_fly(setup, monkeypatch):
    import reuse
    from reuse.augment import pipeline

    tmp_path, model = setup
    data = reuse.load_data(tmp_path / "train.npz")
    common = dict(
        epochs=1,
        seed=0,
        unfreeze="gradual",
        unfreeze_step=3,
        augment="shift:0.1,rotate:0.05",
        image_shape=(8, 8, 1),
    )
    with_inputs = _cache(tmp_path, model, "in.h5", input_views=True).path
    without = _cache(tmp_path, model, "out.h5").path

    def on_the_fly(*args, **kwargs):
        raise AssertionError("augmented on the fly")

    monkeypatch.setattr(pipeline, "build_augmenter", on_the_fly)
    tuned = reuse.finetune(model, data, features=with_inputs, **common)
    assert tuned.stages[-1].tap is None and tuned.stages[-1].epochs == 1
    with pytest.raises(AssertionError, match="on the fly"):
        reuse.finetune(model, data, features=without, **common)


def test_cache_of_other_data_is_refused_with_a_hint_that_names_the_new_data(setup):
    from reuse.cache import open_cache
    from reuse.data import load_data

    tmp_path, model = setup
    result = _cache(tmp_path, model)
    other = tmp_path / "other.npz"
    x, y = load_data(tmp_path / "train.npz").arrays()
    np.savez(other, x=x[::-1], y=y[::-1])
    with open_cache(result.path) as cache:
        cache.check_data(load_data(tmp_path / "train.npz"))
        with pytest.raises(CacheMismatch, match="made from other data") as err:
            cache.check_data(load_data(other))
    assert f"--data {other}" in err.value.hint
