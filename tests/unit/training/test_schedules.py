"""Head grammar, optimizer and schedule specs, and the Keras objects `reuse` adds."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from reuse.core.errors import DataError, SpecError, UsageError
from reuse.surgery.heads import auto_head, build_layers, check_labels, loss_for
from reuse.surgery.layer_spec import (
    GRAMMAR_HELP,
    LayerSpec,
    format_layer_spec,
    parse_layer_spec,
)
from reuse.training.optimizers import (
    OPTIMIZER_HELP,
    OPTIMIZER_NAMES,
    optimizer_factory,
    parse_optimizer,
)
from reuse.training.schedules import SCHEDULE_HELP, SCHEDULE_NAMES, parse_schedule
from tests.helpers import ROOT

STEPS = [0, 1, 7, 10, 25, 49, 50, 120]


def lrs(schedule, steps=STEPS):
    return np.array([float(schedule(t)) for t in steps])


# ---------------------------------------------------------------- head grammar


def test_parse_layer_spec_and_round_trip():
    text = "dense:100:elu,dropout:0.3,batchnorm,alphadropout:0.1,gaussiannoise:0.2,activation:selu,flatten,gap,dense:5:softmax"
    specs = parse_layer_spec(text)
    assert [s.kind for s in specs] == [
        "dense",
        "dropout",
        "batchnorm",
        "alphadropout",
        "gaussiannoise",
        "activation",
        "flatten",
        "gap",
        "dense",
    ]
    assert specs[0] == LayerSpec("dense", units=100, activation="elu")
    assert specs[1].rate == 0.3 and specs[4].rate == 0.2
    assert parse_layer_spec(format_layer_spec(specs)) == specs
    assert parse_layer_spec(" Dense:4 , BN ")[0] == LayerSpec("dense", units=4, activation="linear")
    assert parse_layer_spec("dense:3:silu")[0].activation == "swish"


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("dens:100:elu", "unknown head layer 'dens'", "did you mean 'dense'"),
        ("dense:100:reLu2", "unknown activation 'reLu2'", "did you mean 'relu'"),
        ("dense", "needs UNITS", "dense:UNITS[:ACTIVATION]"),
        ("dense:abc", "`UNITS` must be a whole number. Received: UNITS=abc", ""),
        ("dense:0:relu", "`UNITS` must be >= 1. Received: UNITS=0", ""),
        ("dense:3:relu:x", "needs UNITS and at most one ACTIVATION", ""),
        ("dropout:1.5", "`RATE` must be < 1. Received: RATE=1.5", ""),
        ("dropout", "needs exactly one number", "dropout:RATE"),
        ("gaussiannoise:-1", "`STD` must be >= 0", ""),
        ("batchnorm:3", "batchnorm takes no arguments", ""),
        ("dense:3,,dense:2", "empty layer", ""),
        ("", "--head is empty", ""),
    ],
)
def test_parse_layer_spec_errors(text, needle, hint):
    with pytest.raises(SpecError) as err:
        parse_layer_spec(text)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_unknown_layer_lists_valid_kinds():
    with pytest.raises(SpecError) as err:
        parse_layer_spec("pool")
    for kind in ("dense", "dropout", "batchnorm", "gap", "flatten"):
        assert kind in err.value.hint


def test_build_layers_names_inits_regularizers():
    import keras

    specs = parse_layer_spec(
        "dense:8:relu,dropout:0.2,dense:8:selu,dense:8:tanh,dense:8,batchnorm,"
        "activation:elu,dense:4:swish,dense:3:softmax"
    )
    layers = build_layers(specs, l1=1e-5, l2=1e-4, max_norm=2.0, seed=3)
    assert [layer.name for layer in layers] == [
        "head_dense_1",
        "head_dropout_1",
        "head_dense_2",
        "head_dense_3",
        "head_dense_4",
        "head_batchnorm_1",
        "head_activation_1",
        "head_dense_5",
        "head_dense_6",
    ]
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    inits = [type(d.kernel_initializer).__name__ for d in dense]
    # linear dense_4 is followed by batchnorm + activation:elu, so it gets He like elu
    assert inits == [
        "HeNormal",
        "LecunNormal",
        "GlorotUniform",
        "HeNormal",
        "HeNormal",
        "GlorotUniform",
    ]
    for d in dense:
        assert d.kernel_regularizer.get_config() == pytest.approx({"l1": 1e-5, "l2": 1e-4})
        assert isinstance(d.kernel_constraint, keras.constraints.MaxNorm)
        assert d.kernel_constraint.max_value == 2.0
    assert build_layers(parse_layer_spec("dense:2"), name_prefix="new")[0].name == "new_dense_1"
    plain = build_layers(parse_layer_spec("dense:2"))[0]
    assert plain.kernel_regularizer is None and plain.kernel_constraint is None


def _head_weights(seed):
    import keras

    inp = keras.Input((6,))
    x = inp
    for layer in build_layers(parse_layer_spec("dense:5:relu,dense:5:relu"), seed=seed):
        x = layer(x)
    return [w.copy() for w in keras.Model(inp, x).get_weights()]


def test_build_layers_seeded():
    a, b, c = _head_weights(7), _head_weights(7), _head_weights(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    # two layers built from one seed must still start differently
    assert not np.array_equal(a[0][:5], a[2])


def test_max_norm_constraint_holds_after_training():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    layer = build_layers(parse_layer_spec("dense:3"), max_norm=0.5, seed=0)[0]
    model = keras.Model(inp, layer(inp))
    model.compile(optimizer=parse_optimizer("sgd", 1.0), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32") * 10
    model.fit(x, x[:, :3] * 5, epochs=1, batch_size=8, verbose=0)
    norms = np.linalg.norm(layer.kernel.numpy(), axis=0)
    assert np.all(norms <= 0.5 + 1e-5)


def test_gap_follows_input_rank_and_refuses_flat_inputs():
    import keras

    spec = parse_layer_spec("gap")
    assert isinstance(
        build_layers(spec, input_shape=(5, 3))[0], keras.layers.GlobalAveragePooling1D
    )
    assert isinstance(
        build_layers(spec, input_shape=(4, 4, 3))[0], keras.layers.GlobalAveragePooling2D
    )
    assert isinstance(build_layers(spec)[0], keras.layers.GlobalAveragePooling2D)
    with pytest.raises(SpecError, match="gap needs spatial axes"):
        build_layers(spec, input_shape=(10,))


def test_regularizer_and_max_norm_errors():
    with pytest.raises(UsageError, match=r"--l2 must be >= 0. Received: --l2 -1"):
        build_layers(parse_layer_spec("dense:2"), l2=-1)
    with pytest.raises(UsageError, match=r"--max-norm must be > 0. Received: --max-norm 0"):
        build_layers(parse_layer_spec("dense:2"), max_norm=0)


# ---------------------------------------------------------------- auto head and losses


def test_auto_head_from_labels():
    specs, loss, metrics = auto_head(np.array([0, 3, 1, 2, 4]))
    assert specs == [LayerSpec("dense", 5, "softmax")] and loss == "sparse_categorical_crossentropy"
    assert metrics == ["accuracy"]
    specs, loss, _ = auto_head(np.array([0, 1, 1, 0]))
    assert specs == [LayerSpec("dense", 1, "sigmoid")] and loss == "binary_crossentropy"
    specs, loss, _ = auto_head(np.array([[0], [1]], dtype="float32"))
    assert loss == "binary_crossentropy"
    specs, loss, metrics = auto_head(np.array([0.5, 1.7, -2.0]))
    assert specs == [LayerSpec("dense", 1, "linear")] and loss == "mse" and metrics == ["mae"]
    specs, loss, _ = auto_head(np.random.default_rng(0).normal(size=(5, 3)))
    assert specs == [LayerSpec("dense", 3, "linear")]
    specs, loss, _ = auto_head(np.eye(4)[[0, 1, 3]])
    assert specs == [LayerSpec("dense", 4, "softmax")] and loss == "categorical_crossentropy"
    specs, loss, _ = auto_head(np.array([[1, 1, 0], [0, 0, 0]]))
    assert specs == [LayerSpec("dense", 3, "sigmoid")] and loss == "binary_crossentropy"


def test_auto_head_loss_override():
    specs, loss, _ = auto_head(np.array([0, 1, 1]), loss="sparse_categorical_crossentropy")
    assert specs == [LayerSpec("dense", 2, "softmax")] and loss == "sparse_categorical_crossentropy"
    specs, loss, _ = auto_head(np.array([0, 1, 2]), loss="huber")
    assert specs == [LayerSpec("dense", 1, "linear")] and loss == "huber"
    with pytest.raises(SpecError, match="unknown loss 'bce2'") as err:
        auto_head(np.array([0, 1]), loss="bce2")
    assert "binary_crossentropy" in err.value.hint
    with pytest.raises(DataError, match="needs labels between 0 and 1"):
        auto_head(np.array([0, 1, 2]), loss="binary_crossentropy")
    with pytest.raises(DataError, match="one integer class label per row"):
        auto_head(np.array([0.5, 1.5]), loss="sparse_categorical_crossentropy")
    with pytest.raises(DataError, match="no labels"):
        auto_head(None)


def test_check_labels_against_head_width():
    assert check_labels(np.array([0, 4]), "sparse_categorical_crossentropy", units=5) == 5
    with pytest.raises(
        DataError, match="labels go up to 9 but the head's output has 5 units"
    ) as err:
        check_labels(np.arange(10), "sparse_categorical_crossentropy", units=5)
    assert "dense:10:softmax" in err.value.hint
    with pytest.raises(DataError, match="2 column"):
        check_labels(np.zeros((3, 2)), "mse", units=1)
    with pytest.raises(DataError, match=">= 0"):
        check_labels(np.array([-1, 2]), "sparse_categorical_crossentropy")


def test_smoothed_sparse_loss_equals_smoothed_categorical():
    import keras

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=10)
    p = rng.dirichlet(np.ones(4), size=10).astype("float32")
    smoothed = float(loss_for("sparse_categorical_crossentropy", 0.1)(y, p))
    reference = float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(4)[y], p))
    assert smoothed == pytest.approx(reference, rel=1e-5)
    plain = float(loss_for("sparse_categorical_crossentropy", 0.0)(y, p))
    assert plain == pytest.approx(
        float(keras.losses.SparseCategoricalCrossentropy()(y, p)), rel=1e-6
    )
    assert smoothed != pytest.approx(plain)
    # labels shaped (n, 1) work too
    assert float(loss_for("sparse_ce", 0.1)(y[:, None], p)) == pytest.approx(smoothed, rel=1e-6)
    assert loss_for("bce", 0.2).get_config()["label_smoothing"] == 0.2


def test_loss_for_errors():
    with pytest.raises(UsageError, match="applies to cross-entropy losses, not mse"):
        loss_for("mse", 0.1)
    with pytest.raises(UsageError, match=r"\[0, 1\). Received: --label-smoothing 1.0"):
        loss_for("categorical_crossentropy", 1.0)


# ---------------------------------------------------------------- optimizers


@pytest.mark.parametrize(
    ("text", "cls", "expected"),
    [
        ("sgd", "SGD", {"momentum": 0.0, "nesterov": False}),
        ("momentum", "SGD", {"momentum": 0.9, "nesterov": False}),
        ("nesterov", "SGD", {"momentum": 0.9, "nesterov": True}),
        ("momentum:momentum=0.95", "SGD", {"momentum": 0.95}),
        ("adagrad:initial_accumulator_value=0.2", "Adagrad", {"initial_accumulator_value": 0.2}),
        ("rmsprop:rho=0.8,centered=true", "RMSprop", {"rho": 0.8, "centered": True}),
        (
            "adam:beta1=0.8,beta2=0.99,amsgrad=yes",
            "Adam",
            {"beta_1": 0.8, "beta_2": 0.99, "amsgrad": True},
        ),
        ("adamw:weight_decay=0.01", "AdamW", {"weight_decay": 0.01}),
        ("nadam:eps=1e-6", "Nadam", {"epsilon": 1e-6}),
        (
            "ftrl:l1=0.01,l2=0.001,learning_rate_power=-0.7",
            "Ftrl",
            {
                "l1_regularization_strength": 0.01,
                "l2_regularization_strength": 0.001,
                "learning_rate_power": -0.7,
            },
        ),
        ("adam:clipnorm=1", "Adam", {"clipnorm": 1.0}),
        ("sgd:clipvalue=0.5", "SGD", {"clipvalue": 0.5}),
    ],
)
def test_parse_optimizer(text, cls, expected):
    opt = parse_optimizer(text, 0.05)
    assert type(opt).__name__ == cls
    config = opt.get_config()
    assert config["learning_rate"] == pytest.approx(0.05)
    for key, value in expected.items():
        assert config[key] == pytest.approx(value)


def test_every_optimizer_name_builds_and_is_documented():
    for name in OPTIMIZER_NAMES:
        assert parse_optimizer(name, 0.01) is not None
        assert f"\n  {name} " in OPTIMIZER_HELP


def test_optimizer_factory_gives_fresh_optimizers_and_keras_default_lr():
    make = optimizer_factory("momentum", clipnorm=1.0)
    a, b = make(0.1), make(0.2)
    assert a is not b and a.get_config()["clipnorm"] == 1.0
    assert float(a.learning_rate) == pytest.approx(0.1) and float(b.learning_rate) == pytest.approx(
        0.2
    )
    assert float(make().learning_rate) == pytest.approx(0.01)  # Keras' SGD default
    assert str(make) == "momentum:momentum=0.9,clipnorm=1.0"
    assert type(optimizer_factory(None)(1e-3)).__name__ == "Adam"


@pytest.mark.parametrize(
    ("text", "kwargs", "needle", "hint"),
    [
        ("adamm", {}, "unknown optimizer 'adamm'", "did you mean 'adam'"),
        ("nesterow", {}, "unknown optimizer 'nesterow'", "'nesterov'"),
        ("momentum:momentum=abc", {}, "`momentum` must be a number. Received: momentum=abc", ""),
        ("momentum:momentum=1.5", {}, "`momentum` must be < 1. Received: momentum=1.5", ""),
        ("adam:beta=0.9", {}, "optimizer adam has no key `beta`", "beta_1"),
        (
            "sgd:nesterov=maybe",
            {},
            "`nesterov` must be true or false. Received: nesterov=maybe",
            "",
        ),
        ("adam:lr=0.1", {}, "set the learning rate with --lr", "--lr 0.1"),
        ("adam:beta1=0.9,beta_1=0.8", {}, "`beta_1` is given twice", ""),
        ("adam:beta1", {}, "'beta1' is not key=value", ""),
        ("ftrl:l1=-1", {}, "`l1` must be >= 0. Received: l1=-1", ""),
        ("adam:clipnorm=2", {"clipnorm": 1.0}, "--clip-norm 1.0 contradicts clipnorm=2.0", ""),
        (
            "adam:global_clipnorm=1",
            {"clipnorm": 1.0},
            "clipnorm and global_clipnorm cannot be used together",
            "",
        ),
        (
            "adam",
            {"clipnorm": 1.0, "clipvalue": 0.5},
            "clipnorm and clipvalue cannot be used together",
            "keep one of --clip-norm / --clip-value",
        ),
        (
            "adam:ema_overwrite_frequency=0.5",
            {},
            "`ema_overwrite_frequency` must be a whole number",
            "",
        ),
        ("", {}, "--optimizer is empty", ""),
        ("adam", {"clipnorm": 0}, "--clip-norm must be > 0. Received: --clip-norm 0", ""),
    ],
)
def test_optimizer_errors(text, kwargs, needle, hint):
    with pytest.raises(SpecError) as err:
        optimizer_factory(text if text != "" else " ", **kwargs)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_unknown_optimizer_key_lists_valid_keys():
    with pytest.raises(SpecError) as err:
        optimizer_factory("ftrl:l3=1")
    for key in ("l1_regularization_strength", "learning_rate_power", "clipnorm"):
        assert key in err.value.hint


# ---------------------------------------------------------------- schedules


def sched(text, lr=0.1, spe=10, epochs=5, **kw):
    return parse_schedule(text, lr=lr, steps_per_epoch=spe, epochs=epochs, **kw)


def test_natural_exp_against_formula():
    from reuse.training.schedules import NaturalExpDecay

    s, cbs = sched("natural-exp:decay_rate=0.5,decay_steps=10")
    assert isinstance(s, NaturalExpDecay) and cbs == []
    t = np.array(STEPS, dtype=float)
    np.testing.assert_allclose(lrs(s), 0.1 * np.exp(-0.5 * t / 10), rtol=1e-5)
    s, _ = sched("natural-exp:decay_rate=0.5,decay_steps=10,staircase=true")
    np.testing.assert_allclose(lrs(s), 0.1 * np.exp(-0.5 * np.floor(t / 10)), rtol=1e-5)


def test_power_against_formula():
    from reuse.training.schedules import PowerDecay

    s, _ = sched("power:decay_steps=20,power=2")
    assert isinstance(s, PowerDecay)
    t = np.array(STEPS, dtype=float)
    np.testing.assert_allclose(lrs(s), 0.1 / (1 + t / 20) ** 2, rtol=1e-5)
    s, _ = sched("power:s=10,c=1")  # Géron's letters
    np.testing.assert_allclose(lrs(s), 0.1 / (1 + t / 10), rtol=1e-5)
    s, _ = sched("power")  # default s = one epoch
    assert float(s(10)) == pytest.approx(0.05)


def one_cycle_reference(t, max_lr, total, pct, div, final_div, anneal):
    start, low, rise = max_lr / div, max_lr / div / final_div, pct * total

    def go(a, b, p):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * p)) if anneal == "cos" else a + (b - a) * p

    if t <= rise:
        return go(start, max_lr, t / rise)
    return go(max_lr, low, min((t - rise) / (total - rise), 1.0))


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_against_formula(anneal):
    from reuse.training.schedules import OneCycle

    s, _ = sched(
        f"one-cycle:max_lr=0.5,pct=0.25,div=10,final_div=100,total_steps=40,anneal={anneal}"
    )
    assert isinstance(s, OneCycle)
    expected = [one_cycle_reference(t, 0.5, 40, 0.25, 10, 100, anneal) for t in STEPS]
    np.testing.assert_allclose(lrs(s), expected, rtol=1e-5, atol=1e-9)
    assert float(s(10)) == pytest.approx(0.5)  # peak at pct * total
    assert float(s(0)) == pytest.approx(0.05)
    assert float(s(1000)) == pytest.approx(0.0005)
    s, _ = sched("one-cycle", lr=0.2)  # defaults: max_lr = --lr, total = all steps
    assert float(s(15)) == pytest.approx(0.2)


def test_keras_schedules_match_their_formulas():
    import keras

    sch = keras.optimizers.schedules
    t = np.array(STEPS, dtype=float)
    s, _ = sched("exponential:decay_rate=0.5,decay_steps=10")
    assert isinstance(s, sch.ExponentialDecay)
    np.testing.assert_allclose(lrs(s), 0.1 * 0.5 ** (t / 10), rtol=1e-5)
    s, _ = sched("exponential:decay_rate=0.5,decay_steps=10,staircase=true")
    np.testing.assert_allclose(lrs(s), 0.1 * 0.5 ** np.floor(t / 10), rtol=1e-5)
    s, _ = sched("exponential")  # default: lr0/10 after all T = 50 steps
    assert float(s(50)) == pytest.approx(0.01)
    s, _ = sched("piecewise:boundaries=10;25,values=0.1;0.01;0.001")
    assert isinstance(s, sch.PiecewiseConstantDecay)
    np.testing.assert_allclose(
        lrs(s, [0, 10, 11, 25, 26, 100]), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
    )
    s, _ = sched("polynomial:end_lr=0.01,power=2,decay_steps=20")
    tc = np.minimum(t, 20)
    np.testing.assert_allclose(lrs(s), (0.1 - 0.01) * (1 - tc / 20) ** 2 + 0.01, rtol=1e-5)
    s, _ = sched("polynomial:cycle=true,decay_steps=20")
    assert s.get_config()["cycle"] is True and float(s(25)) > float(s(20))
    s, _ = sched("cosine:warmup_steps=10,decay_steps=20,alpha=0.1")
    assert isinstance(s, sch.CosineDecay)
    assert float(s(0)) == pytest.approx(0.0) and float(s(5)) == pytest.approx(0.05)
    assert float(s(10)) == pytest.approx(0.1)
    assert float(s(20)) == pytest.approx(
        0.1 * (0.1 + 0.9 * (1 + math.cos(math.pi * 0.5)) / 2), rel=1e-5
    )
    assert float(s(100)) == pytest.approx(0.01)
    s, _ = sched("cosine")
    assert float(s(0)) == pytest.approx(0.1) and float(s(50)) == pytest.approx(0.0, abs=1e-8)


def test_lr_must_be_positive():
    with pytest.raises(SpecError, match=r"--lr must be > 0. Received: --lr 0"):
        sched("constant", lr=0)
    with pytest.raises(SpecError, match=r"--lr must be > 0. Received: --lr -1"):
        parse_optimizer("adam", -1)


def test_constant_and_performance():
    import keras

    assert sched("constant") == (0.1, []) and sched(None) == (0.1, []) and sched("") == (0.1, [])
    lr, cbs = sched("performance:factor=0.2,patience=3,min_lr=1e-5")
    assert lr == 0.1 and len(cbs) == 1
    cb = cbs[0]
    assert isinstance(cb, keras.callbacks.ReduceLROnPlateau)
    assert (cb.factor, cb.patience, cb.min_lr, cb.monitor) == (0.2, 3, 1e-5, "val_loss")
    assert sched("performance", validation=False)[1][0].monitor == "loss"
    assert sched("plateau:monitor=val_accuracy")[1][0].monitor == "val_accuracy"


def test_epoch_units():
    s, _ = sched("exponential:decay_epochs=2", spe=10)
    assert s.get_config()["decay_steps"] == 20
    s, _ = sched("exponential:unit=epoch,decay_steps=0.5", spe=10)
    assert s.get_config()["decay_steps"] == 5
    s, _ = sched("cosine:warmup_epochs=1", spe=10, epochs=5)
    assert s.get_config()["warmup_steps"] == 10 and s.get_config()["decay_steps"] == 40
    s, _ = sched("piecewise:boundary_epochs=1;2.5,values=1;0.5;0.1", spe=10)
    assert s.get_config()["boundaries"] == [10, 25]
    s, _ = sched("piecewise:unit=epoch,boundaries=1;2,values=1;0.5;0.1", spe=4)
    assert s.get_config()["boundaries"] == [4, 8]
    s, _ = sched("one-cycle:total_epochs=2", spe=10)
    assert s.get_config()["total_steps"] == 20


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("expo", "unknown schedule 'expo'", "did you mean 'exponential'"),
        ("cosin", "unknown schedule 'cosin'", "'cosine'"),
        (
            "exponential:decay_step=10",
            "schedule exponential has no key `decay_step`",
            "'decay_steps'",
        ),
        (
            "exponential:decay_steps=0",
            "`decay_steps` must be >= 1 step(s). Received: decay_steps=0",
            "",
        ),
        ("exponential:decay_steps=2.5", "whole number of steps", "decay_epochs"),
        (
            "exponential:decay_epochs=0.01",
            "Received: decay_epochs=0.01 (0.01 epochs x 10 steps/epoch = 0 steps)",
            "",
        ),
        (
            "exponential:decay_rate=abc",
            "`decay_rate` must be a number. Received: decay_rate=abc",
            "",
        ),
        ("exponential:staircase=perhaps", "`staircase` must be true or false", ""),
        ("exponential:decay_steps=5,decay_epochs=1", "given twice", ""),
        ("piecewise:boundaries=10;20", "piecewise needs `values`", "piecewise:boundaries="),
        ("piecewise", "piecewise needs `boundaries` and `values`", ""),
        ("piecewise:boundaries=10;20,values=1;2", "one more value than boundaries", ""),
        ("piecewise:boundaries=20;10,values=1;2;3", "must increase strictly", ""),
        (
            "piecewise:boundaries=a;10,values=1;2;3",
            "`boundaries` must be a number. Received: boundaries=a",
            "",
        ),
        ("one-cycle:pct=1.2", "`pct` must be < 1. Received: pct=1.2", ""),
        ("one-cycle:anneal=exp", "`anneal` must be cos or linear", ""),
        ("performance:factor=2", "`factor` must be < 1. Received: factor=2", ""),
        ("performance:patience=x", "`patience` must be a whole number. Received: patience=x", ""),
        ("constant:x=1", "schedule constant takes no keys", ""),
        ("cosine:warmup_target=1", "warm-up target is --lr", ""),
        ("cosine:start_lr=0.1", "`start_lr` needs a warm-up", ""),
        ("exponential:unit=hour", "`unit` must be step or epoch", ""),
        ("cosine:warmup=abc", "`warmup` must be a number. Received: warmup=abc", "e.g. warmup=100"),
    ],
)
def test_schedule_errors(text, needle, hint):
    with pytest.raises(SpecError) as err:
        sched(text)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_custom_schedule_arguments_checked_where_they_enter():
    from reuse.training.schedules import NaturalExpDecay, OneCycle, PowerDecay

    with pytest.raises(SpecError, match=r"`decay_steps` must be > 0. Received: decay_steps=0"):
        PowerDecay(0.1, decay_steps=0)
    with pytest.raises(SpecError, match="decay_steps=-1"):
        NaturalExpDecay(0.1, decay_steps=-1, decay_rate=1)
    with pytest.raises(SpecError, match="total_steps"):
        OneCycle(0.1, total_steps=0)


CUSTOM = [
    "natural-exp:decay_rate=0.3,decay_steps=3,staircase=true",
    "power:decay_steps=4,power=1.5",
    "one-cycle:max_lr=0.2,pct=0.4,total_steps=30,anneal=linear",
]


@pytest.mark.parametrize("text", CUSTOM)
def test_custom_schedule_config_round_trip(text):
    import inspect

    import keras

    s, _ = sched(text)
    config = s.get_config()
    assert set(config) == set(inspect.signature(type(s).__init__).parameters) - {"self"}
    again = type(s).from_config(config)
    np.testing.assert_allclose(lrs(again), lrs(s))
    serialized = keras.saving.serialize_keras_object(s)
    assert serialized["registered_name"].startswith("reuse>")
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    np.testing.assert_allclose(lrs(clone), lrs(s))


def test_saved_models_reload_with_custom_schedules_and_loss(tmp_path):
    """A compiled model whose optimizer uses a reuse schedule reloads (compile=True) in a fresh
    process that only went through reuse.formats.model_io's registration, and gives the same lr."""
    import keras

    from reuse.formats.model_io import save_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.integers(0, 3, size=8)
    expected = {}
    for i, text in enumerate(CUSTOM):
        keras.utils.set_random_seed(0)
        s, _ = sched(text)
        inp = keras.Input((4,))
        out = build_layers(parse_layer_spec("dense:3:softmax"), seed=0)[0](inp)
        model = keras.Model(inp, out)
        model.compile(
            optimizer=parse_optimizer("momentum", s),
            loss=loss_for("sparse_categorical_crossentropy", 0.1),
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # 2 steps
        path = tmp_path / f"m{i}.keras"
        save_model(model, path)
        expected[str(path)] = [float(s(t)) for t in STEPS] + [float(model.optimizer.learning_rate)]
    script = (
        "import json, sys, keras\n"
        "from reuse.formats import model_io\n"
        "model_io._register_custom_objects()\n"
        "out = {}\n"
        "for p in json.loads(sys.argv[1]):\n"
        "    m = keras.models.load_model(p, compile=True)\n"
        "    s = m.optimizer._learning_rate\n"
        f"    out[p] = [float(s(t)) for t in {STEPS}] + [float(m.optimizer.learning_rate),\n"
        "              int(m.optimizer.iterations.numpy()), type(m.loss).__name__]\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(list(expected))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, values in expected.items():
        lr_values, iterations, loss_name = got[path][:-2], got[path][-2], got[path][-1]
        np.testing.assert_allclose(lr_values, values, rtol=1e-6)
        assert iterations == 2
        assert loss_name == "SmoothedSparseCategoricalCrossentropy"


# ---------------------------------------------------------------- help text and imports


def test_help_constants_cover_every_name():
    for name in SCHEDULE_NAMES:
        assert f"\n  {name}" in SCHEDULE_HELP
    for word in (
        "dense:UNITS[:ACTIVATION]",
        "dropout:RATE",
        "batchnorm",
        "alphadropout:RATE",
        "gaussiannoise:STD",
        "flatten",
        "gap",
        "activation:NAME",
        "leaky_relu",
        "selu",
    ):
        assert word in GRAMMAR_HELP
    # the examples in the help text parse
    parse_layer_spec(GRAMMAR_HELP.rsplit("Example: ", 1)[1])
    for example in (
        "exponential:decay_rate=0.1,decay_epochs=10",
        "cosine:warmup_epochs=1",
        "piecewise:boundaries=500;1000,values=0.01;0.005;0.001",
        "performance:factor=0.2,patience=3",
    ):
        assert example in SCHEDULE_HELP
        sched(example, spe=100, epochs=20)
    for example in (
        "momentum:momentum=0.95",
        "adam:beta2=0.99,clipnorm=1",
        "ftrl:l1=0.01,l2=0.001",
    ):
        assert example in OPTIMIZER_HELP
        optimizer_factory(example)


def test_spec_modules_do_not_import_keras():
    code = (
        "import sys; import reuse.surgery.heads, reuse.training.optimizers, reuse.training.schedules; "
        "print(any(m in sys.modules for m in ('keras', 'tensorflow')))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.stdout.strip() == "False", out.stderr
