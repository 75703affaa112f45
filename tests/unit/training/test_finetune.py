"""reuse.training.finetune on tiny models and data: frozen layers, seeds, caches, early stopping,
regularization, depth search."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import classification_data, mlp, save_npz


def _weights(model, names):
    return {n: [np.array(w) for w in model.get_layer(n).get_weights()] for n in names}


def test_frozen_weights_bit_identical_and_loss_decreases(finetune_task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, valid = finetune_task
    base = load_model(path)
    before = _weights(base, ["hidden1", "hidden2", "hidden3"])
    result = finetune(base, load_data(train), val=load_data(valid), epochs=8, seed=0)
    after = _weights(result.model, ["hidden1", "hidden2", "hidden3"])
    for name in before:
        for a, b in zip(before[name], after[name], strict=True):
            assert np.array_equal(a, b), name
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert result.transfer.cut == "hidden5"
    assert result.transfer.head and result.model.layers[-1].units == 3  # sized from the labels


@pytest.mark.slow
def test_paths_are_read_like_the_objects(finetune_task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, valid = finetune_task
    by_path = finetune(str(path), train, val=str(valid), epochs=2, seed=0)
    by_object = finetune(load_model(path), load_data(train), val=load_data(valid), epochs=2, seed=0)
    for a, b in zip(by_path.model.get_weights(), by_object.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_weights(finetune_task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, _ = finetune_task
    a = finetune(load_model(path), load_data(train), epochs=2, seed=7).model.get_weights()
    b = finetune(load_model(path), load_data(train), epochs=2, seed=7).model.get_weights()
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)


def test_unfreeze_all_trains_reused_layers(finetune_task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, _ = finetune_task
    base = load_model(path)
    before = np.array(base.get_layer("hidden1").kernel)
    result = finetune(base, load_data(train), epochs=2, seed=0, unfreeze="all")
    assert not np.array_equal(before, np.array(result.model.get_layer("hidden1").kernel))


def test_finetune_from_cache_never_runs_layers_below_tap(finetune_task, tmp_path):
    """With a matching cache, only the layers above the tap run; the whole model is saved."""
    from reuse import load_data, load_model
    from reuse.cache import cache_features
    from reuse.training.finetune import finetune

    path, train, _ = finetune_task
    base = load_model(path)
    feats = tmp_path / "feats.h5"
    cache_features(base, load_data(train), feats, taps=["hidden3"])
    model = load_model(path)

    def boom(*args, **kwargs):
        raise AssertionError("a layer below the tap ran")

    originals = {}
    for name in ("hidden1", "hidden2", "hidden3"):
        layer = model.get_layer(name)
        originals[name] = layer.call
        layer.call = boom
    result = finetune(model, None, features=feats, epochs=3, seed=0)
    for name, call in originals.items():
        model.get_layer(name).call = call
    assert result.used_cache
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < losses[0]
    # The whole model on raw inputs predicts what the cached path predicts.
    from reuse.cache import open_cache
    from reuse.surgery import cuts

    x, _ = load_data(train).arrays()
    cached = open_cache(feats).array("hidden3")
    top = cuts.top_model(result.model, "hidden3")
    np.testing.assert_allclose(
        result.model.predict(x, verbose=0), top.predict(cached, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_early_stopping_restores_best(finetune_task):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, valid = finetune_task
    # Validation labels that disagree with the training labels: val_loss rises as training
    # goes on, so early stopping must stop and bring back the first epoch's weights.
    vx, vy = load_data(valid).arrays()
    wrong = save_npz(valid.with_name("wrong.npz"), vx, (vy + 1) % 3)
    result = finetune(
        load_model(path),
        load_data(train),
        val=load_data(wrong),
        epochs=30,
        seed=0,
        early_stopping=2,
        lr=0.05,
    )
    val_losses = [r["val_loss"] for r in result.history]
    assert len(val_losses) < 30
    from reuse.inference.evaluate import evaluate

    ev = evaluate(result.model, load_data(wrong))
    assert ev.loss == pytest.approx(min(val_losses), rel=1e-3)


def test_divergence_keeps_last_good_weights(finetune_task):
    from reuse import load_data, load_model
    from reuse.core.errors import TrainingDiverged
    from reuse.training.finetune import finetune

    path, train, _ = finetune_task
    with pytest.raises(TrainingDiverged, match="NaN or Inf"):
        finetune(load_model(path), load_data(train), epochs=3, seed=0, optimizer="sgd", lr=1e30)


def test_max_norm_dropout_and_l2_take_effect(finetune_task, tmp_path):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, _ = finetune_task
    result = finetune(
        load_model(path),
        load_data(train),
        epochs=3,
        seed=0,
        lr=0.05,
        max_norm=0.5,
        dropout=0.3,
        l2=0.01,
        head="dense:16:relu,dense:3:softmax",
    )
    model = result.model
    head = [model.get_layer(n) for n in result.transfer.head]
    assert any(type(layer).__name__ == "Dropout" for layer in head)
    dense = [layer for layer in head if type(layer).__name__ == "Dense"]
    for layer in dense:
        norms = np.sqrt((np.array(layer.kernel) ** 2).sum(axis=0))
        assert norms.max() <= 0.5 + 1e-5
    assert (
        len(model.losses) == len(dense) + 2
    )  # one L2 penalty per trained kernel: head, hidden4, hidden5


@pytest.mark.slow
def test_reuse_depth_search_tries_shallower_cuts(finetune_task, tmp_path):
    from reuse import load_data, load_model
    from reuse.training.finetune import finetune

    path, train, valid = finetune_task
    result = finetune(
        load_model(path),
        load_data(train),
        val=load_data(valid),
        epochs=2,
        seed=0,
        unfreeze="gradual",
        reuse_depth="search:2",
        max_unfreeze=1,
    )
    cuts_tried = [s.cut for s in result.stages if s.index == 0]
    assert cuts_tried[:3] == ["hidden5", "hidden4", "hidden3"]
    assert result.transfer.cut in cuts_tried
    assert sum(1 for s in result.stages if s.index == 0 and s.kept) == 1


@pytest.mark.slow
def test_train_bn_switch(tmp_path):
    """Frozen BatchNormalization keeps its moving statistics in every gradual stage unless --train-bn."""
    from reuse import load_model
    from reuse.training.finetune import finetune

    model = mlp(n_in=8, hidden=3, units=12, n_out=4, seed=1, bn=True)
    for layer in model.layers[:-1]:
        layer.trainable = False
    path = tmp_path / "bn.keras"
    model.save(path)
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    stats = [np.array(w) for w in model.get_layer("bn1").weights]
    kept = finetune(
        load_model(path), (x * 3 + 1, y), epochs=2, seed=0, unfreeze="gradual", val_split=0.3
    )
    for a, b in zip(stats, [np.array(w) for w in kept.model.get_layer("bn1").weights], strict=True):
        assert np.array_equal(a, b)
    trained = finetune(
        load_model(path), (x * 3 + 1, y), epochs=2, seed=0, unfreeze="all", train_bn=True
    )
    moving = np.array(trained.model.get_layer("bn1").moving_mean)
    assert not np.array_equal(stats[2], moving)


def test_record_metrics_are_those_of_the_restored_epoch(finetune_task, tmp_path):
    from reuse import load_data, load_model
    from reuse.inference.evaluate import evaluate
    from reuse.training.finetune import finetune

    path, train, valid = finetune_task
    result = finetune(
        load_model(path),
        load_data(train),
        val=load_data(valid),
        epochs=15,
        early_stopping=2,
        seed=0,
        lr=0.05,
    )
    ev = evaluate(result.model, load_data(valid))
    assert result.metrics["val_loss"] == pytest.approx(ev.loss, rel=1e-3)
