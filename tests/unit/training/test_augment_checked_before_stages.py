"""An --augment the raw-row stage cannot apply is refused before any stage trains.

With a cache of views and flat rows but no --image-shape, `finetune --unfreeze gradual` trained
every cached stage (up to 200 epochs each by default) and only then stopped with
`Error: --augment shift ... work on images` at the stage that trains from the raw rows.
"""

import pytest

from reuse.core.errors import UsageError
from tests.unit.cache.test_views_without_augment_note import cached_mlp


def _setup(tmp_path, **kw):
    kw.update(augment="shift:0.1", views=2, image_shape=(8, 8, 1))
    return cached_mlp(tmp_path, taps=("hidden1", "hidden2"), frozen=3, **kw)


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


@pytest.mark.slow
def test_a_cache_with_input_views_needs_no_image_shape(tmp_path):
    model, data = _setup(tmp_path, input_views=True)
    result = _tune(model, data, tmp_path)  # every stage can train from the cache: no error
    assert result.stages and result.stages[0].tap == "hidden2"
