"""The defaults of gradual unfreezing: short stages without augmentation, long ones with it;
anything given explicitly wins."""

import pytest

from reuse.training.options import GRADUAL_DEFAULTS, OTHER_DEFAULTS, FinetuneOptions


def _resolved(**kw):
    options = FinetuneOptions(**kw)
    options.check()
    return options


def test_gradual_without_augmentation_keeps_short_stages():
    o = _resolved(unfreeze="gradual")
    assert (o.epochs, o.early_stopping, o.stage_lr_div) == (10, 3, 2.0)
    assert (o.batch_size, o.label_smoothing) == (32, 0.0)


def test_gradual_with_augmentation_trains_each_stage_until_it_stops_improving():
    o = _resolved(unfreeze="gradual", augment="digits", image_shape=(28, 28, 1))
    want = GRADUAL_DEFAULTS[True]
    assert o.epochs == want["epochs"] >= 100 and o.early_stopping == want["early_stopping"]
    assert o.stage_lr_div == want["stage_lr_div"]
    assert o.batch_size == want["batch_size"] and o.label_smoothing == want["label_smoothing"]


@pytest.mark.parametrize(
    "given",
    [
        dict(epochs=7),
        dict(early_stopping=2),
        dict(batch_size=64),
        dict(label_smoothing=0.0),
        dict(stage_lr_div=3.0),
    ],
)
def test_explicit_values_win(given):
    o = _resolved(unfreeze="gradual", augment="digits", **given)
    for name, value in given.items():
        assert getattr(o, name) == value


def test_augment_none_is_no_augmentation():
    o = _resolved(unfreeze="gradual", augment="none")
    assert o.augment is None and o.epochs == GRADUAL_DEFAULTS[False]["epochs"]


def test_other_modes_are_unchanged_by_augmentation():
    o = _resolved(augment="digits")
    assert (o.epochs, o.early_stopping, o.batch_size) == (
        OTHER_DEFAULTS["epochs"],
        OTHER_DEFAULTS["early_stopping"],
        OTHER_DEFAULTS["batch_size"],
    )


def test_a_stage_stops_early_when_validation_stops_improving():
    import numpy as np

    import reuse
    from tests.helpers import classification_data, mlp

    x, y = classification_data(n=60)
    # Validation labels unrelated to the inputs: the validation loss soon stops improving.
    noise = np.random.default_rng(1).integers(0, 3, 20)
    result = reuse.finetune(
        mlp(),
        (x, y),
        val=(x[:20], noise),
        unfreeze="gradual",
        epochs=60,
        early_stopping=2,
        seed=0,
        max_unfreeze=2,
    )
    assert any(s.epochs < 60 for s in result.stages)
    assert all(np.isfinite(r["loss"]) for r in result.history)
