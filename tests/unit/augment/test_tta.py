"""Test-time augmentation: the mean of the predictions on the clean input and K views."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.augment.pipeline import views
from reuse.augment.tta import tta_predict
from reuse.core.errors import UsageError

SHAPE = (6, 6, 1)


def _model(activation="softmax"):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((36,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(3, activation=activation),
        ]
    )


def _x():
    return np.random.default_rng(1).random((10, 36)).astype("float32")


def test_k0_is_plain_predict():
    model, x = _model(), _x()
    np.testing.assert_array_equal(
        tta_predict(model, x, "digits", 0, SHAPE), model.predict(x, verbose=0)
    )


def test_average_of_the_clean_input_and_the_views():
    model, x = _model(), _x()
    out = tta_predict(model, x, "shift:0.2,noise:0.1", 2, SHAPE, seed=3, batch_size=4)
    copies = views(x, "shift:0.2,noise:0.1", 2, seed=3, image_shape=SHAPE, batch_size=4)
    expected = np.mean([model.predict(v, verbose=0) for v in (x, *copies)], axis=0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out, model.predict(x, verbose=0))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        out, tta_predict(model, x, "shift:0.2,noise:0.1", 2, SHAPE, seed=3, batch_size=4)
    )


def test_mixup_and_cutmix_are_left_out():
    model, x = _model(), _x()
    with_mix = tta_predict(model, x, "noise:0.1,mixup", 2, SHAPE, seed=1)
    without = tta_predict(model, x, "noise:0.1", 2, SHAPE, seed=1)
    np.testing.assert_array_equal(with_mix, without)


def test_logits_are_softmaxed_before_averaging():
    model, x = _model(activation=None), _x()
    out = tta_predict(model, x, "noise:0.1", 2, from_logits=True)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_refusals():
    model, x = _model(), _x()
    with pytest.raises(UsageError, match=">= 0"):
        tta_predict(model, x, "noise", -1)
    with pytest.raises(UsageError, match="needs an augmentation"):
        tta_predict(model, x, "mixup", 2, SHAPE)
    with pytest.raises(UsageError, match="--image-shape"):
        tta_predict(model, x, "crop", 2)
