"""reuse.inspection.fast: the TF-free inspect of .keras/.h5 files gives what a full Keras load
gives, or declines."""

from __future__ import annotations

import zipfile

import pytest

from tests.helpers import convnet, mlp, nested_application, residual


def _frozen_nested_sequential():
    import keras

    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(5, name="a"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="inner",
    )
    inner.trainable = False
    return keras.Sequential(
        [keras.Input((8,)), inner, keras.layers.Dense(3, name="out")], name="outer"
    )


def _assert_same(path):
    from reuse.inspection import inspect_loaded
    from reuse.inspection.fast import try_inspect

    fast = try_inspect(path, verify_weights=True)
    assert fast is not None and fast.fast_path
    assert try_inspect(path).rows == fast.rows
    full = inspect_loaded(path)
    assert [r["name"] for r in fast.rows] == [r["name"] for r in full.rows]
    for a, b in zip(fast.rows, full.rows, strict=True):
        for key in ("index", "class", "params", "trainable", "depth"):
            assert a[key] == b[key], (a, b)
        if a["output_shape"] is not None:
            assert a["output_shape"] == b["output_shape"], (a, b)
    assert fast.totals == full.totals
    return fast


@pytest.mark.parametrize(
    "build, suffix",
    [
        (lambda: mlp(bn=True), ".keras"),
        (lambda: mlp(bn=True), ".h5"),
        (residual, ".keras"),
        (convnet, ".keras"),
        (_frozen_nested_sequential, ".keras"),
        (_frozen_nested_sequential, ".h5"),
    ],
)
def test_fast_path_matches_keras(tmp_path, build, suffix):
    path = tmp_path / f"m{suffix}"
    build().save(path)
    fast = _assert_same(path)
    assert all(r["output_shape"] is not None for r in fast.rows)


@pytest.mark.slow
def test_fast_path_matches_keras_nested_application(tmp_path):
    path = tmp_path / "transfer.keras"
    nested_application().save(path)
    fast = _assert_same(path)
    inner = [r for r in fast.rows if r["name"].startswith("mobilenetv2_0.35_32/")]
    assert len(inner) > 50 and fast.totals["frozen_params"] > fast.totals["trainable_params"] > 0


def test_fast_path_matches_tf_keras2_h5(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    layers = tf_keras.layers
    inner = tf_keras.Sequential(
        [layers.Dense(5, name="a", input_shape=(8,)), layers.BatchNormalization(name="bn")],
        name="inner",
    )
    inner.trainable = False
    inp = layers.Input((8,), name="inp")
    joined = layers.Concatenate(name="cat")([inner(inp), layers.Dense(4, name="br")(inp)])
    model = tf_keras.Model(
        inp, layers.Dense(3, activation="softmax", name="out")(joined), name="tfk"
    )
    path = tmp_path / "tfk2.h5"
    model.save(path, save_format="h5")
    fast = _assert_same(path)
    assert [r["name"] for r in fast.rows] == [
        "inp",
        "inner",
        "inner/a",
        "inner/bn",
        "br",
        "cat",
        "out",
    ]
    conv = tf_keras.Sequential(
        [
            layers.Conv2D(3, 3, input_shape=(10, 10, 1), name="c"),
            layers.BatchNormalization(name="bn"),
            layers.MaxPooling2D(name="p"),
            layers.Flatten(name="f"),
            layers.Dense(2, name="d"),
        ]
    )
    conv.save(tmp_path / "conv2.h5", save_format="h5")
    _assert_same(tmp_path / "conv2.h5")


def test_fast_path_declines_what_it_cannot_reproduce(tmp_path):
    import keras

    from reuse.inspection.fast import try_inspect

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(
        keras.layers.Dense(3, name="d")(inp)
    )
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    assert try_inspect(tmp_path / "lam.keras") is None
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert try_inspect(tmp_path / "junk.keras") is None
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as z:
        z.writestr("other.txt", "x")
    assert try_inspect(tmp_path / "noconfig.keras") is None
