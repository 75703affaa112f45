"""finetune with a cache of augmented views and no --augment says so in one note line: a piped
`cache-features --augment SPEC --views K | finetune` without --augment trained on the clean
features only, silently."""

import numpy as np

from tests.helpers import mlp

NOTE = "augmented views"


def cached_mlp(tmp_path, taps=("hidden2",), frozen=2, **kw):
    """A 64-input MLP with its first `frozen` layers frozen, 30 rows in train.npz, and a cache
    of them at `taps` in v.h5 (`kw`: cache_features' augment, views, ...): (model, data)."""
    from reuse.cache import cache_features
    from reuse.data import load_data

    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = rng.uniform(0, 1, size=(30, 64)).astype("float32")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    model = mlp(n_in=64, hidden=2, units=8)
    for layer in model.layers[:frozen]:
        layer.trainable = False
    data = load_data(tmp_path / "train.npz")
    cache_features(model, data, tmp_path / "v.h5", taps=list(taps), **kw)
    return model, data


def test_note_when_a_views_cache_trains_without_augment(tmp_path, capsys):
    import reuse

    model, data = cached_mlp(tmp_path, augment="shift:0.1", views=2, image_shape=(8, 8, 1))
    capsys.readouterr()
    reuse.finetune(model, data, features=tmp_path / "v.h5", epochs=1, seed=0)
    err = capsys.readouterr().err
    assert err.count(NOTE) == 1
    assert "add --augment shift:0.1 to train on the views" in err


def test_no_note_for_a_plaincached_mlp(tmp_path, capsys):
    import reuse

    model, data = cached_mlp(tmp_path)
    capsys.readouterr()
    reuse.finetune(model, data, features=tmp_path / "v.h5", epochs=1, seed=0)
    assert NOTE not in capsys.readouterr().err


def test_no_note_when_augment_matches_the_views(tmp_path, capsys):
    import reuse

    model, data = cached_mlp(tmp_path, augment="shift:0.1", views=2, image_shape=(8, 8, 1))
    capsys.readouterr()
    reuse.finetune(
        model,
        data,
        features=tmp_path / "v.h5",
        epochs=1,
        seed=0,
        augment="shift:0.1",
        image_shape=(8, 8, 1),
    )
    assert NOTE not in capsys.readouterr().err


def test_no_note_from_lr_find_which_sweeps_a_cached_tap_clean(tmp_path, capsys):
    from reuse.guide.lr_find import lr_find
    from reuse.training.options import FinetuneOptions

    model, data = cached_mlp(tmp_path, augment="shift:0.1", views=2, image_shape=(8, 8, 1))
    capsys.readouterr()
    lr_find(model, data, features=tmp_path / "v.h5", steps=10, options=FinetuneOptions(seed=0))
    assert NOTE not in capsys.readouterr().err
