"""reuse.weights.importer.import_weights: PyTorch, safetensors, TF2 and .npz sources checked against
the source framework's outputs, layout conversions, and --map rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli
from tests.weight_sources import MLP_ARCH, needs_torch, nn, torch, torch_mlp


@needs_torch
def test_full_checkpoint_and_safetensors_give_the_same_model(weight_files, tmp_path):
    from safetensors.numpy import save_file

    from reuse.weights.importer import import_weights

    net = torch_mlp()
    save_file(
        {k: v.numpy() for k, v in net.state_dict().items()}, str(tmp_path / "mlp.safetensors")
    )
    a = import_weights(weight_files["pth"][0], MLP_ARCH).model
    b = import_weights(tmp_path / "mlp.safetensors", MLP_ARCH).model
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def _torch_cnn(flatten: bool):
    torch.manual_seed(1)
    layers = [
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
    ]
    layers += (
        [nn.Flatten(), nn.Linear(6 * 5 * 5, 3)]
        if flatten
        else [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)]
    )
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval()


@needs_torch
@pytest.mark.parametrize("flatten", [False, True], ids=["global_pool", "flatten_order"])
def test_torch_cnn_with_batchnorm_matches_pytorch(tmp_path, flatten):
    import keras

    from reuse.weights.importer import import_weights

    net = _torch_cnn(flatten)
    torch.save(net.state_dict(), tmp_path / "cnn.pt")
    keras.utils.set_random_seed(0)
    top = (
        [keras.layers.Flatten(name="flat")]
        if flatten
        else [keras.layers.GlobalAveragePooling2D(name="gap")]
    )
    model = keras.Sequential(
        [
            keras.Input((7, 7, 2)),
            keras.layers.Conv2D(4, 3, padding="same", name="c0"),
            keras.layers.BatchNormalization(epsilon=1e-5, name="b1"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(6, 3, name="c3"),
            keras.layers.BatchNormalization(epsilon=1e-5, name="b4"),
            keras.layers.ReLU(),
            *top,
            keras.layers.Dense(3, name="fc"),
        ]
    )
    rules = ["0=c0", "1=b1", "3=c3", "4=b4", "7=fc" if flatten else "8=fc"]
    x = np.random.default_rng(1).normal(size=(4, 7, 7, 2)).astype("float32")
    rep = import_weights(tmp_path / "cnn.pt", model, mapping=rules, strict=True)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
    assert np.max(np.abs(model(x, training=False).numpy() - expected)) <= 1e-5
    conv = next(r for r in rep.tensors if r["name"] == "0.weight")
    assert conv["shape"] == [4, 2, 3, 3] and conv["target_shape"] == [3, 3, 2, 4]
    if flatten:
        fc = next(r for r in rep.tensors if r["name"] == "7.weight")
        assert "flatten order" in fc["conversion"]


@needs_torch
def test_torch_module_source_computes_its_own_reference():
    from reuse.weights.importer import import_weights

    net = torch_mlp()
    x = np.random.default_rng(2).normal(size=(5, 8)).astype("float32")
    rep = import_weights(net, MLP_ARCH, check_inputs=x, tolerance=1e-5)
    assert rep.check["passed"] and rep.check["rows"] == 5
    assert not rep.warnings  # eps 1e-5 on both sides


@needs_torch
def test_depthwise_embedding_and_conv1d_match_pytorch():
    import keras

    from reuse.weights.importer import import_weights

    torch.manual_seed(3)
    dw = nn.Conv2d(3, 6, 3, groups=3)  # depth multiplier 2
    keras_dw = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")]
    )
    import_weights(
        {"dw.weight": dw.weight.detach().numpy(), "dw.bias": dw.bias.detach().numpy()},
        keras_dw,
        strict=True,
    )
    x = np.random.default_rng(3).normal(size=(2, 6, 6, 3)).astype("float32")
    with torch.no_grad():
        expected = np.moveaxis(dw(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy(), 1, -1)
    assert np.max(np.abs(keras_dw(x).numpy() - expected)) <= 1e-5

    emb, conv = nn.Embedding(20, 4), nn.Conv1d(4, 5, 3)
    keras_seq = keras.Sequential(
        [
            keras.Input((9,), dtype="int32"),
            keras.layers.Embedding(20, 4, name="emb"),
            keras.layers.Conv1D(5, 3, name="conv"),
        ]
    )
    state = {f"emb.{k}": v.numpy() for k, v in emb.state_dict().items()}
    state.update({f"conv.{k}": v.numpy() for k, v in conv.state_dict().items()})
    import_weights(state, keras_seq, strict=True)
    tokens = np.random.default_rng(4).integers(0, 20, size=(2, 9))
    with torch.no_grad():
        expected = conv(emb(torch.from_numpy(tokens)).transpose(1, 2)).transpose(1, 2).numpy()
    assert np.max(np.abs(keras_seq(tokens).numpy() - expected)) <= 1e-5


def test_tf2_object_based_checkpoint(weight_files, tmp_path):
    import tensorflow as tf

    from reuse.weights.importer import import_weights

    prefix = weight_files["tf2"][0]
    reader = tf.train.load_checkpoint(prefix)
    rep = import_weights(prefix, "input:8,dense:6:name=hidden1,dense:6:name=hidden2", strict=True)
    np.testing.assert_array_equal(
        rep.model.get_layer("hidden1").kernel.numpy(),
        reader.get_tensor("hidden1/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
    )
    assert {r["name"]: r["status"] for r in rep.tensors}["save_counter"] == "known, unused"


def test_npz_keras_and_pytorch_naming(tmp_path):
    from reuse.weights.importer import import_weights

    rng = np.random.default_rng(0)
    k1, k2 = rng.normal(size=(8, 6)).astype("float32"), rng.normal(size=(6, 3)).astype("float32")
    np.savez(
        tmp_path / "w.npz",
        **{
            "hidden1/kernel": k1,
            "hidden1/bias": np.ones(6, "float32"),
            "out.weight": k2.T.copy(),
            "out.bias": np.zeros(3, "float32"),
        },
    )
    rep = import_weights(
        tmp_path / "w.npz", "input:8,dense:6:name=hidden1,dense:3:name=out", strict=True
    )
    np.testing.assert_array_equal(rep.model.get_layer("hidden1").kernel.numpy(), k1)
    np.testing.assert_array_equal(rep.model.get_layer("out").kernel.numpy(), k2)


def test_map_regex_groups_and_files(tmp_path):
    from reuse.weights.importer import import_weights

    rng = np.random.default_rng(1)
    state = {
        "layer_1.weight": rng.normal(size=(6, 8)).astype("float32"),
        "layer_1.bias": np.zeros(6, "float32"),
        "layer_2.weight": rng.normal(size=(3, 6)).astype("float32"),
        "layer_2.bias": np.zeros(3, "float32"),
    }
    np.savez(tmp_path / "w.npz", **state)
    arch = "input:8,dense:6,dense:3"  # layers dense_1, dense_2
    rep = import_weights(tmp_path / "w.npz", arch, mapping=[r"layer_(\d+)=dense_\1"], strict=True)
    np.testing.assert_array_equal(
        rep.model.get_layer("dense_2").kernel.numpy(), state["layer_2.weight"].T
    )
    (tmp_path / "m.json").write_text(json.dumps({"layer_1": "dense_1", "layer_2": "dense_2"}))
    (tmp_path / "m.toml").write_text('[map]\n"layer_(\\\\d+)" = "dense_\\\\1"\n')
    for f in ("m.json", "m.toml"):
        assert (
            import_weights(
                tmp_path / "w.npz", arch, mapping=str(tmp_path / f), strict=True
            ).counts()["assigned"]
            == 4
        )
    # an empty destination drops a tensor; --strict then fails on the target left at init
    result = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--arch",
            arch,
            "--map",
            r"layer_(\d+)=dense_\1",
            "--map",
            r"layer_2\.bias=",
            "--strict",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert (
        result.exit_code == 1
        and "dense_2/bias" in result.stderr
        and "left at init" in result.stderr
    )
