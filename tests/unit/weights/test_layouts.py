"""PyTorch -> Keras layout conversion, one layer class at a time, and the mismatch hints."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import WeightImportError
from reuse.weights.layouts import bn_epsilon_warnings, convert, mismatch_hint, refuse_recurrent


def _row():
    return {"name": "src", "note": None}


def _built(layer, shape):
    layer.build(shape)
    return layer


def test_linear_is_transposed():
    import keras

    w = np.arange(12, dtype="float32").reshape(4, 3)  # (out, in)
    name, value, how = convert("weight", w, _built(keras.layers.Dense(4), (None, 3)), "d", _row())
    assert name == "kernel" and np.array_equal(value, w.T) and "transpose" in how


def test_linear_after_flatten_follows_keras_flatten_order():
    import keras

    inp = keras.Input((2, 3, 4))  # H, W, C
    dense = keras.layers.Dense(5)
    dense(keras.layers.Flatten()(inp))
    w = np.random.default_rng(0).normal(size=(5, 4 * 2 * 3)).astype("float32")  # in = C*H*W
    _, value, how = convert("weight", w, dense, "d", _row())
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")  # one HWC sample
    torch_out = w @ np.moveaxis(x, -1, 0).reshape(-1)  # PyTorch flattens CHW
    assert np.allclose(x.reshape(-1) @ value, torch_out, atol=1e-5)
    assert "flatten order" in how


def test_conv_and_depthwise_kernels():
    import keras

    conv = _built(keras.layers.Conv2D(6, 3), (None, 8, 8, 2))
    w = np.zeros((6, 2, 3, 3), "float32")
    name, value, _ = convert("weight", w, conv, "c", _row())
    assert name == "kernel" and value.shape == (3, 3, 2, 6)
    depthwise = _built(keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (None, 8, 8, 4))
    w = np.arange(8 * 9, dtype="float32").reshape(8, 1, 3, 3)  # (in*mult, 1, k, k)
    name, value, how = convert("weight", w, depthwise, "dw", _row())
    assert value.shape == (3, 3, 4, 2) and "depthwise" in how
    assert value[0, 0, 1, 1] == w[1 * 2 + 1, 0, 0, 0]  # input channel 1, multiplier 1


def test_batchnorm_words_and_keras_words():
    import keras

    bn = _built(keras.layers.BatchNormalization(), (None, 3))
    v = np.ones(3, "float32")
    assert convert("weight", v, bn, "bn", _row())[0] == "gamma"
    assert convert("bias", v, bn, "bn", _row())[0] == "beta"
    assert convert("running_var", v, bn, "bn", _row())[0] == "moving_variance"
    assert convert("scale", v, bn, "bn", _row()) == ("gamma", v, None)
    dense = _built(keras.layers.Dense(3), (None, 3))
    row = _row()
    assert convert("alpha", v, dense, "d", row)[0] is None
    assert "parameter 'alpha' is not a weight of 'd'" in row["note"]


def test_unknown_and_recurrent_layouts_are_refused():
    import keras

    with pytest.raises(WeightImportError, match="does not know how PyTorch lays out"):
        convert("weight", np.ones((3, 3)), keras.layers.Activation("relu"), "a", _row())
    with pytest.raises(WeightImportError, match="does not convert recurrent weight layouts"):
        refuse_recurrent(keras.layers.GRU(3, reset_after=False), "rnn", "rnn.weight_ih_l0")
    with pytest.raises(WeightImportError, match="does not convert recurrent weight layouts"):
        refuse_recurrent(keras.layers.ConvLSTM2D(3, 3), "rnn", "rnn.weight_ih_l0")
    refuse_recurrent(keras.layers.LSTM(3), "rnn", "rnn.weight_ih_l0")  # converted: no error
    refuse_recurrent(keras.layers.Dense(3), "d", "d.weight")  # not recurrent: no error


def test_mismatch_hints():
    raw = np.zeros((3, 4))
    assert "transpose(1, 0) of the source would fit" in mismatch_hint(raw, raw, (4, 3), None)
    hint = mismatch_hint(raw, raw.T, (3, 4), "transpose (out, in) → (in, out)")
    assert "already fits" in hint and hint.startswith("after transpose")


def test_bn_epsilon_warning_names_the_layer():
    import keras

    class A:  # one assignment of a plan
        layer = _built(keras.layers.BatchNormalization(epsilon=1e-3), (None, 3))
        layer_path = "bn"
        row = {"name": "bn.weight", "conversion": "weight → gamma"}

    warnings = bn_epsilon_warnings([A, A], {}, lambda name: name.split(".")[0])
    assert len(warnings) == 1 and "PyTorch's default BatchNorm eps is 1e-05" in warnings[0]
    assert bn_epsilon_warnings([A], {"bn": 1e-3}, lambda name: "bn") == []
