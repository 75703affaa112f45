"""`augment` in pretraining: training rows only, seeded, not in the base; the autoencoder
reconstructs the clean row, pairs augment each row of a pair on its own."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import UsageError
from reuse.pretrain.autoencoder import pretrain_autoencoder
from reuse.pretrain.pairs import pretrain_pairs


def _bars(n=48, seed=0):
    """8x8 images of a vertical bar at one of three places (the class), flat rows in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = np.zeros((n, 8, 8), "float32")
    for i, c in enumerate(y):
        x[i, 2:6, 1 + 2 * c : 3 + 2 * c] = 1
    x = np.clip(x + 0.1 * rng.random(x.shape), 0, 1).astype("float32")
    return x.reshape(n, 64), y


AUG = {"augment": "shift:0.1,noise:0.05", "image_shape": "8,8,1", "arch": "dense", "seed": 0}


def _same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


def _no_augmentation_layer(model) -> bool:
    names = [type(layer).__name__ for layer in model.layers]
    return not any(n.startswith("Random") or "Augment" in n or "Noise" in n for n in names)


@pytest.mark.slow
def test_autoencoder_learns_from_augmented_rows_seeded_and_the_base_holds_no_augmenter(tmp_path):
    import keras

    x, _ = _bars()
    run = dict(layers=(16, 8), epochs=8, lr=0.01, **AUG)
    result = pretrain_autoencoder(x, **run)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert _same(result.base, pretrain_autoencoder(x, **run).base)  # fixed by the seed
    plain = pretrain_autoencoder(x, layers=(16, 8), epochs=8, lr=0.01, arch="dense", seed=0)
    assert not _same(result.base, plain.base)  # the augmentation did change the training
    result.save(tmp_path / "ae.keras")
    saved = keras.models.load_model(tmp_path / "ae.keras")
    assert [layer.name for layer in saved.layers] == ["input", "hidden1", "hidden2"]
    assert _no_augmentation_layer(saved)
    assert np.allclose(saved(x, training=True), saved(x, training=False))
    assert result.options.augment == "shift:0.1,noise:0.05"


@pytest.mark.slow
def test_the_autoencoder_target_is_the_clean_row():
    """Heavy noise on the inputs only: the reconstruction loss is measured against the clean
    rows, so the validation loss (clean in, clean out) ends near the training loss, not near
    the noise's own variance that an augmented target would add."""
    x, _ = _bars(60)
    result = pretrain_autoencoder(
        x,
        val=x,
        layers=(32, 16),
        epochs=25,
        lr=0.01,
        seed=0,
        arch="dense",
        augment="noise:0.3",
    )
    last = result.history[-1]
    # an augmented target would carry noise of variance 0.09 the network cannot predict
    assert last["loss"] < 0.06 and last["val_loss"] < 0.06


def test_stacked_augments_the_first_level_only():
    x, _ = _bars()
    result = pretrain_autoencoder(x, layers=(16, 8), epochs=2, mode="stacked", **AUG)
    assert [row["stage"] for row in result.history] == [0, 0, 1, 1]
    assert result.base.output.shape[1:] == (8,)


@pytest.mark.slow
def test_pairs_augment_each_row_seeded_and_the_tower_holds_no_augmenter(tmp_path):
    import keras

    x, y = _bars()
    run = dict(layers=(16, 8), pairs=240, epochs=6, lr=0.01, **AUG)
    result = pretrain_pairs((x, y), **run)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert _same(result.base, pretrain_pairs((x, y), **run).base)
    plain = pretrain_pairs((x, y), **{**run, "augment": None, "image_shape": None})
    assert not _same(result.base, plain.base)
    result.save(tmp_path / "tower.keras")
    saved = keras.models.load_model(tmp_path / "tower.keras")
    assert [layer.name for layer in saved.layers] == ["input", "hidden1", "hidden2"]
    assert _no_augmentation_layer(saved)


def test_the_two_rows_of_a_pair_get_independent_transformations():
    from reuse.augment.pipeline import build_augmenter
    from reuse.pretrain.pairs import _pair_augmenter

    x, _ = _bars(4)
    rows = np.stack([x, x], axis=1)  # (4, 2, 64): each pair holds one row twice
    augmenter = build_augmenter("shift:0.2", (64,), (8, 8, 1), seed=0)
    layer = _pair_augmenter(augmenter, (64,))
    out = np.asarray(layer(rows, training=True))
    assert out.shape == rows.shape
    assert not np.allclose(out[:, 0], out[:, 1])  # the same row, two different shifts
    assert np.array_equal(np.asarray(layer(rows, training=False)), rows)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"augment": "mixup"}, "pretrain augments single rows"),
        ({"augment": "cutmix,shift"}, "drop mixup/cutmix, e.g. --augment shift:0.1"),
        ({"augment": "spin"}, "spin"),
        ({"arch": "dense", "image_shape": "8,8,1"}, "--arch is dense with no --augment"),
    ],
)
def test_bad_augment_options_are_refused_before_any_work(kwargs, words):
    x, _ = _bars(8)
    with pytest.raises(UsageError) as info:
        pretrain_autoencoder(x, layers=(4,), epochs=1, **kwargs)
    assert words in f"{info.value} — {info.value.hint}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["autoencoder", "pairs"])
def test_an_interrupted_augmented_run_resumes_to_the_same_weights(tmp_path, kind):
    from tests.unit.pretrain.test_autoencoder import _StopAt

    x, y = _bars()
    if kind == "autoencoder":
        run, data = pretrain_autoencoder, x
        kw = dict(layers=(8, 4), epochs=3, **AUG)
    else:
        run, data = pretrain_pairs, (x, y)
        kw = dict(layers=(8, 4), epochs=3, pairs=96, **AUG)
    whole = run(data, **kw).base.get_weights()
    with pytest.raises(KeyboardInterrupt):
        run(data, checkpoint_dir=tmp_path, callbacks=[_StopAt(2)], **kw)
    resumed = run(data, checkpoint_dir=tmp_path, resume=True, **kw)
    for a, b in zip(whole, resumed.base.get_weights(), strict=True):
        assert np.allclose(a, b, atol=1e-6)
    with pytest.raises(UsageError, match="other options"):
        run(data, checkpoint_dir=tmp_path, resume=True, **{**kw, "augment": "shift:0.2"})
