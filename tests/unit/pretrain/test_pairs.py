"""Pairs for the siamese network: balanced, seeded, correct; the tower is shared and saved."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import DataError
from reuse.pretrain.pairs import draw_pairs


def test_pairs_are_balanced_correct_and_seeded():
    labels = np.repeat(np.arange(5), [2, 3, 10, 1, 4])
    pairs, same = draw_pairs(labels, 1001, seed=3)
    assert pairs.shape == (1001, 2) and same.shape == (1001,)
    assert same.sum() == 500  # n // 2 "same class" pairs, the rest "different"
    assert np.array_equal(labels[pairs[:, 0]] == labels[pairs[:, 1]], same == 1)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    again, same_again = draw_pairs(labels, 1001, seed=3)
    assert np.array_equal(pairs, again) and np.array_equal(same, same_again)
    other, _ = draw_pairs(labels, 1001, seed=4)
    assert not np.array_equal(pairs, other)
    # the class of one row (label 3) can still be the second row of a "different" pair
    assert 3 in labels[pairs[same == 0]].ravel()


def test_one_hot_labels_count_as_classes():
    one_hot = np.eye(3)[np.repeat(np.arange(3), 4)]
    pairs, same = draw_pairs(one_hot, 40, seed=0)
    codes = one_hot.argmax(1)
    assert np.array_equal(codes[pairs[:, 0]] == codes[pairs[:, 1]], same == 1)


@pytest.mark.parametrize(
    "labels, words",
    [(np.zeros(5, int), "at least two classes"), (np.arange(4), "no class has two rows")],
)
def test_pairs_refused_when_they_cannot_be_drawn(labels, words):
    with pytest.raises(DataError, match=words):
        draw_pairs(labels, 10, seed=0)


def test_siamese_trains_one_shared_tower_and_returns_it(tmp_path):
    from reuse.pretrain.pairs import pretrain_pairs

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 12)
    x = (rng.normal(size=(36, 6)) + 2 * y[:, None]).astype("float32")
    before = []
    result = pretrain_pairs(
        (x, y),
        layers=(8, 4),
        pairs=200,
        epochs=2,
        seed=0,
        val_split=0.25,
        callbacks=[_Spy(before)],
    )
    tower = result.base
    assert tower.name == "tower" and [w.name for w in tower.layers] == [
        "input",
        "hidden1",
        "hidden2",
    ]
    assert tower.output.shape[1:] == (4,)
    siamese = before[0]
    # one tower, one set of weights: 2 Dense of the tower + pair_hidden + same
    assert len(siamese.trainable_weights) == 2 * 2 + 2 * 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(result.history[-1])
    assert result.rows == 200
    model, csv_path, report_path = result.save(tmp_path / "tower.keras")
    import keras

    again = keras.models.load_model(model)
    assert np.allclose(again.predict(x, verbose=0), tower.predict(x, verbose=0), atol=1e-6)
    assert csv_path.exists() and '"pretrain": "pairs"' in report_path.read_text()


def test_unlabeled_data_is_refused():
    from reuse.pretrain.pairs import pretrain_pairs

    with pytest.raises(DataError, match="no labels"):
        pretrain_pairs((np.zeros((8, 3), "float32"), None), layers=(4,), pairs=10, epochs=1)


class _Spy:
    """A Keras callback that keeps the model it trains (built lazily on the Keras base)."""

    def __new__(cls, store):
        import keras

        class Spy(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                store.append(self.model)

        return Spy()
