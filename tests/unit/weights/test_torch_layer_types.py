"""More PyTorch layer types in import-weights: each test builds the torch module, imports its
state dict into the matching Keras layer, and compares outputs to 1e-5 (channels moved last)."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import UsageError, WeightImportError
from reuse.weights.importer import import_weights
from tests.weight_sources import needs_torch, torch

pytestmark = needs_torch
TOL = 1e-5


def _torch_out(module, x_last: np.ndarray) -> np.ndarray:
    """The module's output on channels-last x (moved to channels-first and back)."""
    module.eval()
    x = x_last if x_last.ndim <= 2 else np.moveaxis(x_last, -1, 1)
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x)))
    out = out.numpy()
    return out if out.ndim <= 2 else np.moveaxis(out, 1, -1)


def _compare(module, keras_model, x_last: np.ndarray, **kw) -> float:
    torch.manual_seed(0)
    rep = import_weights(dict(_state(module)), keras_model, strict=True, **kw)
    got = np.asarray(rep.model(x_last, training=False))
    return float(np.max(np.abs(got - _torch_out(module, x_last))))


def _state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _randomize(module, seed=0):
    """Parameters away from their defaults (PReLU 0.25, norm scales 1), so a mix-up shows."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


def _model(input_shape, *layers):
    import keras

    inp = keras.Input(input_shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


@pytest.mark.parametrize("shared", [False, True])
def test_prelu_per_channel_and_shared(shared):
    import keras
    from torch import nn

    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 3))
    net.add_module("act", nn.PReLU(1 if shared else 4))
    _randomize(net)
    axes = [1, 2, 3] if shared else [1, 2]
    model = _model(
        (6, 6, 3),
        keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.PReLU(shared_axes=axes, name="act"),
    )
    assert _compare(net, model, _x(2, 6, 6, 3)) < TOL


def test_prelu_after_linear():
    import keras
    from torch import nn

    net = nn.Sequential()
    net.add_module("fc", nn.Linear(5, 6))
    net.add_module("act", nn.PReLU(6))
    _randomize(net)
    model = _model((5,), keras.layers.Dense(6, name="fc"), keras.layers.PReLU(name="act"))
    assert _compare(net, model, _x(3, 5)) < TOL


def test_layernorm_and_groupnorm():
    import keras
    from torch import nn

    net = nn.Sequential()
    net.add_module("fc", nn.Linear(6, 8))
    net.add_module("ln", nn.LayerNorm(8))
    _randomize(net)
    model = _model(
        (6,),
        keras.layers.Dense(8, name="fc"),
        keras.layers.LayerNormalization(epsilon=1e-5, name="ln"),
    )
    assert _compare(net, model, _x(4, 6)) < TOL

    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 8, 3))
    net.add_module("gn", nn.GroupNorm(2, 8))
    _randomize(net)
    model = _model(
        (7, 7, 3),
        keras.layers.Conv2D(8, 3, name="conv"),
        keras.layers.GroupNormalization(groups=2, epsilon=1e-5, name="gn"),
    )
    assert _compare(net, model, _x(2, 7, 7, 3)) < TOL


def test_grouped_depthwise_1d_and_transposed_convolutions():
    import keras
    from torch import nn

    cases = [
        (nn.Conv2d(4, 6, 3, groups=2), keras.layers.Conv2D(6, 3, groups=2), (7, 7, 4)),
        (
            nn.Conv2d(4, 8, 3, groups=4),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
            (7, 7, 4),
        ),
        (nn.Conv1d(3, 5, 3), keras.layers.Conv1D(5, 3), (9, 3)),
        (
            nn.ConvTranspose2d(3, 5, 3, stride=2),
            keras.layers.Conv2DTranspose(5, 3, strides=2),
            (4, 4, 3),
        ),
        (nn.ConvTranspose1d(3, 4, 3), keras.layers.Conv1DTranspose(4, 3), (6, 3)),
    ]
    for torch_layer, keras_layer, shape in cases:
        net = nn.Sequential()
        net.add_module("layer", torch_layer)
        _randomize(net)
        keras_layer.name = "layer"
        model = _model(shape, keras_layer)
        diff = _compare(net, model, _x(2, *shape))
        assert diff < TOL, f"{type(torch_layer).__name__}: {diff}"


def test_embedding():
    import keras
    from torch import nn

    emb = nn.Embedding(11, 4)
    _randomize(emb)
    model = _model((5,), keras.layers.Embedding(11, 4, name="emb"))
    rep = import_weights({"emb.weight": emb.weight.detach().numpy()}, model, strict=True)
    ids = np.random.default_rng(0).integers(0, 11, (3, 5))
    with torch.no_grad():
        want = emb(torch.from_numpy(ids)).numpy()
    assert np.max(np.abs(np.asarray(rep.model(ids)) - want)) < TOL


def _permute_then_flatten(permute: bool):
    """conv → [x.permute(0, 3, 2, 1)] → flatten → linear, in torch and in Keras."""
    import keras
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 2)
            self.fc = nn.Linear(3 * 3 * 4, 5)

        def forward(self, x):
            x = self.conv(x)
            if permute:
                x = x.permute(0, 3, 2, 1).contiguous()
            return self.fc(x.reshape(x.shape[0], -1))

    layers = [keras.layers.Conv2D(3, 2, name="conv")]
    if permute:
        layers.append(keras.layers.Permute((2, 1, 3)))
    layers += [keras.layers.Flatten(), keras.layers.Dense(5, name="fc")]
    return _randomize(Net()), _model((4, 5, 2), *layers)


def test_flatten_order_auto_sees_a_permute_and_none_turns_the_reorder_off():
    net, model = _permute_then_flatten(permute=True)
    x = _x(3, 4, 5, 2)
    assert _compare(net, model, x) < TOL  # auto: a Permute feeds the Flatten, no reorder
    assert _compare(net, model, x, flatten_order="none") < TOL
    assert _compare(net, model, x, flatten_order="nchw") > 1e-2  # forced reorder is wrong here

    net, model = _permute_then_flatten(permute=False)
    assert _compare(net, model, x) < TOL  # auto reorders C·H·W to H·W·C
    assert _compare(net, model, x, flatten_order="none") > 1e-2


def test_a_failed_check_names_the_other_flatten_orders():
    net, model = _permute_then_flatten(permute=True)
    x = _x(3, 4, 5, 2)
    y = _torch_out(net, x)
    with pytest.raises(WeightImportError) as err:
        import_weights(_state(net), model, check_inputs=x, check_outputs=y, flatten_order="nchw")
    assert "--flatten-order auto or none" in err.value.hint
    with pytest.raises(UsageError, match="auto, nchw, none"):
        import_weights(_state(net), model, flatten_order="hwc")


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_with_their_gate_orders_and_two_biases(kind):
    import keras
    from torch import nn

    torch_cls = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}[kind]
    net = nn.Module()
    net.rnn = torch_cls(4, 5, batch_first=True)
    _randomize(net)
    keras_cls = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU, "RNN": keras.layers.SimpleRNN}
    model = _model((6, 4), keras_cls[kind](5, return_sequences=True, name="rnn"))
    rep = import_weights(net, model, strict=True)
    x = _x(3, 6, 4)
    with torch.no_grad():
        want = net.rnn(torch.from_numpy(x))[0].numpy()
    assert np.max(np.abs(np.asarray(rep.model(x)) - want)) < TOL
    bias = next(r for r in rep.tensors if r["target"] == "rnn/bias")
    assert "stacked" in bias["note"]


def test_a_gru_without_reset_after_and_a_stacked_layer_are_not_filled_wrongly():
    import keras
    from torch import nn

    gru = nn.GRU(4, 5, batch_first=True)
    model = _model((6, 4), keras.layers.GRU(5, reset_after=False, name="gru"))
    with pytest.raises(WeightImportError, match="recurrent"):
        import_weights({f"gru.{k}": v.detach().numpy() for k, v in gru.state_dict().items()}, model)
    two = nn.LSTM(4, 5, num_layers=2, batch_first=True)
    model = _model((6, 4), keras.layers.LSTM(5, name="lstm"))
    rep = import_weights(
        {f"lstm.{k}": v.detach().numpy() for k, v in two.state_dict().items()}, model
    )
    row = next(r for r in rep.tensors if r["name"] == "lstm.weight_ih_l1")
    assert row["status"] == "unused" and "--map" in row["note"]


def test_multihead_attention():
    import keras
    from torch import nn

    net = nn.Module()
    net.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    _randomize(net)
    inp = keras.Input((5, 8))
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attn")
    model = keras.Model(inp, mha(inp, inp))
    rep = import_weights(net, model, strict=True)
    x = _x(2, 5, 8)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        want = net.attn(xt, xt, xt, need_weights=False)[0].numpy()
    assert np.max(np.abs(np.asarray(rep.model(x)) - want)) < TOL
    targets = {r["name"]: r["target"] for r in rep.tensors}
    assert targets["attn.k_proj_weight"] == "attn/key/kernel"
