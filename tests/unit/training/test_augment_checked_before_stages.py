"""An --augment the raw-row stage cannot apply is refused before any stage trains.

With a cache of views and flat rows but no --image-shape, `finetune --unfreeze gradual` trained
every cached stage (up to 200 epochs each by default) and only then stopped with
`Error: --augment shift ... work on images` at the stage that trains from the raw rows.
"""

import numpy as np
import pytest

from reuse.core.errors import UsageError
from tests.helpers import mlp


def _setup(tmp_path, **kw):
    from reuse.cache import cache_features
    from reuse.data import load_data

    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = rng.uniform(0, 1, size=(30, 64)).astype("float32")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    model = mlp(n_in=64, hidden=2, units=8)
    for layer in model.layers[:3]:
        layer.trainable = False
    data = load_data(tmp_path / "train.npz")
    cache_features(
        model,
        data,
        tmp_path / "v.h5",
        taps=["hidden1", "hidden2"],
        augment="shift:0.1",
        views=2,
        image_shape=(8, 8, 1),
        **kw,
    )
    return model, data


def _tune(model, data, tmp_path):
    import reuse

    return reuse.finetune(
        model,
        data,
        features=tmp_path / "v.h5",
        unfreeze="gradual",
        unfreeze_step=1,
        epochs=1,
        seed=0,
        augment="shift:0.1",
    )


def test_refused_before_the_cached_stages_train(tmp_path, capsys):
    model, data = _setup(tmp_path)
    capsys.readouterr()
    with pytest.raises(UsageError) as err:
        _tune(model, data, tmp_path)
    assert "--image-shape" in err.value.hint
    assert "stage 0" not in capsys.readouterr().err  # nothing trained


def test_a_cache_with_input_views_needs_no_image_shape(tmp_path):
    model, data = _setup(tmp_path, input_views=True)
    result = _tune(model, data, tmp_path)  # every stage can train from the cache: no error
    assert result.stages and result.stages[0].tap == "hidden2"
