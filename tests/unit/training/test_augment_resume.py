"""The augmentation of epoch e depends on (seed, e) only, so a resumed run augments exactly as
an uninterrupted one (and the augmented cache's views on (seed, row offset, view))."""

import numpy as np


def _model_and_data():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    return model, rng.uniform(0, 1, (40, 64)).astype("float32"), np.arange(40) % 3


def _augmenter():
    from reuse.augment.pipeline import build_augmenter

    return build_augmenter("shift:0.2,noise:0.1", (64,), (8, 8, 1), seed=5)


def test_split_training_equals_one_run():
    from reuse.training.loop import fit_arrays

    whole, x, y = _model_and_data()
    fit_arrays(whole, x, y, batch_size=8, epochs=4, seed=1, augment=_augmenter())
    split, _, _ = _model_and_data()
    fit_arrays(split, x, y, batch_size=8, epochs=2, seed=1, augment=_augmenter())
    # A fresh augmenter, as after a restart: only the epoch index carries over.
    fit_arrays(split, x, y, batch_size=8, epochs=4, initial_epoch=2, seed=1, augment=_augmenter())
    for a, b in zip(whole.get_weights(), split.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_reseed_fixes_the_draws():
    augmenter = _augmenter()
    x = np.random.default_rng(2).uniform(0, 1, (6, 64)).astype("float32")
    augmenter.reseed(3)
    first = np.asarray(augmenter(x)[0])
    augmenter(x)
    augmenter.reseed(3)
    np.testing.assert_array_equal(first, np.asarray(augmenter(x)[0]))
    augmenter.reseed(4)
    assert not np.array_equal(first, np.asarray(augmenter(x)[0]))


def test_layers_draw_from_disjoint_seed_streams():
    """Each random layer's draws come from its own stream after a reseed: two layers that
    shared a seed would draw the same numbers (a rotation copying a shift's), which made the
    cached views (one batch per view) and on-the-fly batches differ in distribution."""
    import keras

    from reuse.augment.pipeline import build_augmenter

    augmenter = build_augmenter("shift:0.1,rotate:0.1,zoom:0.1,noise:0.1", (64,), (8, 8, 1), seed=5)
    generators = [
        [v for v in vars(layer).values() if isinstance(v, keras.random.SeedGenerator)]
        for layer in augmenter.layers
    ]
    assert sum(map(len, generators)) >= 4
    x = np.random.default_rng(2).uniform(0, 1, (6, 64)).astype("float32")
    for key in (0, 1):
        augmenter.reseed(key)
        seen = [set() for _ in generators]
        for _ in range(12):
            for states, gens in zip(seen, generators, strict=True):
                states.update(tuple(np.asarray(g.state.value).tolist()) for g in gens)
            augmenter(x)
        for i, a in enumerate(seen):
            for b in seen[i + 1 :]:
                assert not a & b
