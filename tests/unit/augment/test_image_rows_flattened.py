"""Image data fed to a flat model: `--augment` views the rows as the images they were.

A user with (N, 28, 28, 1) or (N, 28, 28) images and the 784-input MNIST MLP got
`Error: --augment shift works on images ..., and each input row has shape (784,)`: the shape
rule flattened the rows before the augmenter saw them. finetune (and lr-find, check), the
augmented cache and test-time augmentation now take the image shape from the data.
"""

import numpy as np
import pytest

from reuse.augment.spec import implied_image_shape
from tests.helpers import mlp


def test_implied_image_shape():
    assert implied_image_shape((28, 28), (784,)) == (28, 28, 1)
    assert implied_image_shape((8, 8, 3), (192,)) == (8, 8, 3)
    assert implied_image_shape((28, 28), (28, 28, 1)) is None  # the model takes images
    assert implied_image_shape((784,), (784,)) is None  # flat data: --image-shape says
    assert implied_image_shape((2, 3, 4, 5), (120,)) is None  # not an image


def _images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.uniform(0, 1, size=(n, 8, 8, 1)).astype("float32")
    x[:, :4, :4] += y[:, None, None, None] * 0.5
    return np.clip(x, 0, 1), y.astype("int64")


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


@pytest.mark.slow
def test_finetune_on_image_rows_trains_as_flat_rows_with_image_shape():
    import reuse

    x, y = _images()
    flat = x.reshape(len(x), -1)
    kw = dict(epochs=2, seed=3, augment="shift:0.1,rotate:0.05")
    a = reuse.finetune(mlp(n_in=64, hidden=2, units=8), (x, y), **kw)
    b = reuse.finetune(mlp(n_in=64, hidden=2, units=8), (flat, y), image_shape=(8, 8, 1), **kw)
    for wa, wb in zip(_weights(a.model), _weights(b.model), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_tta_on_image_rows_matches_flat_rows_with_image_shape():
    from reuse.inference.evaluate import TTA, predict_array

    x, _ = _images()
    model = mlp(n_in=64, hidden=2, units=8)
    a = predict_array(model, x, tta=TTA("shift:0.1", 2))
    b = predict_array(model, x.reshape(len(x), -1), tta=TTA("shift:0.1", 2, image_shape=(8, 8, 1)))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_cache_views_of_image_rows_match_flat_rows_with_image_shape(tmp_path):
    from reuse.cache import cache_features, open_cache
    from reuse.data import load_data

    x, y = _images()
    np.savez(tmp_path / "img.npz", x=x, y=y)
    np.savez(tmp_path / "flat.npz", x=x.reshape(len(x), -1), y=y)
    model = mlp(n_in=64, hidden=2, units=8)
    kw = dict(taps=["hidden1"], augment="shift:0.1", views=2, seed=1)
    a = cache_features(model, load_data(tmp_path / "img.npz"), tmp_path / "a.h5", **kw)
    b = cache_features(
        model, load_data(tmp_path / "flat.npz"), tmp_path / "b.h5", image_shape=(8, 8, 1), **kw
    )
    with open_cache(a.path) as ca, open_cache(b.path) as cb:
        np.testing.assert_allclose(ca.views("hidden1"), cb.views("hidden1"), rtol=1e-6)
        assert ca.image_shape == cb.image_shape == (8, 8, 1)


def test_the_error_for_flat_rows_lists_the_image_operations_in_english():
    import pytest

    from reuse.augment.pipeline import build_augmenter
    from reuse.augment.spec import parse_augment
    from reuse.core.errors import UsageError

    with pytest.raises(UsageError) as err:
        build_augmenter(parse_augment("digits"), (784,))
    assert "--augment shift, rotate and zoom work on images" in err.value.message
    with pytest.raises(UsageError) as err:
        build_augmenter(parse_augment("flip,noise"), (784,))
    assert "--augment flip works on images" in err.value.message
    assert "--image-shape 28,28,1" in err.value.hint


def test_finetune_record_carries_the_image_shape_it_used(tmp_path):
    # so that a piped `evaluate --tta` on flat test rows views them as the same images
    from tests.helpers import cli, last_record

    x, y = _images()
    np.savez(tmp_path / "img.npz", x=x, y=y)
    mlp(n_in=64, hidden=2, units=8).save(tmp_path / "base.keras")
    args = ["finetune", tmp_path / "base.keras", "--data", tmp_path / "img.npz", "--json"]
    result = cli([*args, "--augment", "shift", "--epochs", "1", "-o", tmp_path / "t.keras"])
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["image_shape"] == [8, 8, 1]
