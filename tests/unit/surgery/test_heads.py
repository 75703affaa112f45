"""reuse.surgery.heads: the --head grammar, built layers (names, initializers, constraints), the
automatic head and loss from the labels, label smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import DataError, SpecError, UsageError
from reuse.surgery.heads import auto_head, build_layers, check_labels, loss_for
from reuse.surgery.layer_spec import LayerSpec, format_layer_spec, parse_layer_spec
from reuse.training.optimizers import parse_optimizer


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
