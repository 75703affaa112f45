"""`reuse import-weights` and weight-only files in `reuse inspect`: every source format,
PyTorch layout conversion checked against PyTorch's own outputs, partial restores, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli, last_record, mlp

try:
    import torch
    from torch import nn
except ImportError:  # the PyTorch tests skip cleanly
    torch = None
    nn = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _err(result) -> str:
    return result.stderr


# --- source files built once per module --------------------------------------------------


if torch is not None:

    class MLP(nn.Module):
        """fc1 → BatchNorm → ReLU → fc2 → ReLU → out (a module-level class, so torch.save can pickle it)."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(8, 7)
            self.bn = nn.BatchNorm1d(7)
            self.fc2 = nn.Linear(7, 5)
            self.out = nn.Linear(5, 3)

        def forward(self, x):
            return self.out(torch.relu(self.fc2(torch.relu(self.bn(self.fc1(x))))))


def _torch_mlp():
    torch.manual_seed(0)
    net = MLP()
    with torch.no_grad():  # BatchNorm stats that are not the identity, so a mix-up shows
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
    return net.eval()


MLP_ARCH = "input:8,dense:7:name=fc1,batchnorm:eps=1e-5:name=bn,activation:relu,dense:5:relu:name=fc2,dense:3:name=out"


def _tf1_checkpoint(prefix, sizes=(8, 6, 6, 6, 10)):
    """A TF1 name-based checkpoint: hidden1..3 and an output layer, plus Adam slots."""
    import tensorflow as tf

    values = {}
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, sizes[0]))
        h = x
        names = [f"hidden{i}" for i in range(1, len(sizes) - 1)] + ["output"]
        for name, (n_in, n_out) in zip(
            names, zip(sizes[:-1], sizes[1:], strict=False), strict=True
        ):
            w = tf.compat.v1.get_variable(f"{name}/kernel", (n_in, n_out))
            b = tf.compat.v1.get_variable(
                f"{name}/bias", (n_out,), initializer=tf.compat.v1.random_normal_initializer()
            )
            h = tf.nn.elu(tf.matmul(h, w) + b)
        step = tf.compat.v1.train.get_or_create_global_step()
        train = tf.compat.v1.train.AdamOptimizer().minimize(tf.reduce_sum(h), global_step=step)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(train, {x: np.ones((2, sizes[0]), "float32")})
            for v in tf.compat.v1.trainable_variables():
                values[v.op.name] = sess.run(v)
            tf.compat.v1.train.Saver().save(sess, str(prefix))
    return values


# --- reuse inspect on weight-only files ---------------------------------------------------


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    files = {}
    arrays = {
        "hidden1/kernel": np.arange(48, dtype="float32").reshape(8, 6),
        "hidden1/bias": np.zeros(6, "float32"),
    }
    np.savez(d / "w.npz", **arrays)
    files["npz"] = (d / "w.npz", {"hidden1/kernel": [8, 6], "hidden1/bias": [6]})
    from safetensors.numpy import save_file

    save_file(
        {"fc1.weight": np.ones((6, 8), "float32"), "fc1.bias": np.ones(6, "float32")},
        str(d / "w.safetensors"),
    )
    files["safetensors"] = (d / "w.safetensors", {"fc1.weight": [6, 8], "fc1.bias": [6]})
    model = mlp(hidden=2, bn=True)
    model.save_weights(d / "m.weights.h5")
    files["weights.h5"] = (
        d / "m.weights.h5",
        {"layers/dense/vars/0": [8, 6], "layers/batch_normalization/vars/3": [6]},
    )
    _tf1_checkpoint(d / "tf1" / "model.ckpt")
    files["tf1"] = (
        d / "tf1" / "model.ckpt",
        {"hidden1/kernel": [8, 6], "output/bias": [10], "hidden1/kernel/Adam": [8, 6]},
    )
    import tensorflow as tf

    class Linear(tf.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.kernel = tf.Variable(tf.random.normal((n_in, n_out), seed=1))
            self.bias = tf.Variable(tf.ones(n_out))

    prefix = tf.train.Checkpoint(hidden1=Linear(8, 6), hidden2=Linear(6, 6)).save(
        str(d / "tf2" / "ckpt")
    )
    files["tf2"] = (prefix, {"hidden1/kernel": [8, 6], "hidden2/bias": [6], "save_counter": []})
    if torch is not None:
        net = _torch_mlp()
        torch.save(net.state_dict(), d / "mlp.pt")
        files["pt"] = (d / "mlp.pt", {"fc1.weight": [7, 8], "bn.running_var": [7], "out.bias": [3]})
        torch.save({"state_dict": net.state_dict(), "epoch": 4}, d / "full.pth")
        files["pth"] = (d / "full.pth", {"fc1.weight": [7, 8], "bn.num_batches_tracked": []})
        torch.save(net, d / "whole.pt")
    files["dir"] = d
    return files


@pytest.mark.parametrize("fmt", ["npz", "safetensors", "weights.h5", "tf1", "tf2", "pt", "pth"])
def test_inspect_lists_tensors_of_every_weight_format(weight_files, fmt):
    if fmt not in weight_files:
        pytest.skip("torch is not installed")
    path, expected = weight_files[fmt]
    result = cli(["inspect", path, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "weights"
    shapes = {r["name"]: r["shape"] for r in data["rows"]}
    for name, shape in expected.items():
        assert shapes[name] == shape, (name, shapes)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in shapes
    first = data["rows"][0]
    assert {"dtype", "min", "max", "mean", "zeros"} <= set(first)


def test_inspect_keras_weights_names_layers_and_tf1_slots(weight_files):
    data = json.loads(cli(["inspect", weight_files["weights.h5"][0], "--format", "json"]).stdout)
    layer_of = {r["name"]: r["layer"] for r in data["rows"]}
    assert (
        layer_of["layers/dense/vars/0"] == "hidden1"
        and layer_of["layers/batch_normalization/vars/0"] == "bn1"
    )
    data = json.loads(cli(["inspect", weight_files["tf1"][0], "--format", "json"]).stdout)
    kinds = {r["name"]: r["kind"] for r in data["rows"]}
    assert kinds["hidden1/kernel"] == "weight"
    assert kinds["hidden1/kernel/Adam"] == "optimizer" and kinds["global_step"] == "bookkeeping"
    # the .index file and the folder name the same checkpoint
    index = cli(
        ["inspect", str(weight_files["tf1"][0]) + ".data-00000-of-00001", "--format", "json"]
    )
    folder = cli(["inspect", weight_files["tf1"][0].parent, "--format", "json"])
    assert json.loads(index.stdout)["rows"] == data["rows"] == json.loads(folder.stdout)["rows"]


@needs_torch
def test_pickled_code_is_refused_never_unpickled(weight_files, tmp_path):
    whole = weight_files["dir"] / "whole.pt"
    for args in (
        ["inspect", whole],
        ["import-weights", whole, "--arch", MLP_ARCH, "-o", tmp_path / "o.keras"],
    ):
        result = cli(args)
        assert result.exit_code == 1
        assert "contains code" in _err(result) and "never unpickles" in _err(result)
        assert "Traceback" not in _err(result)
    assert not (tmp_path / "o.keras").exists()


@needs_torch
def test_damaged_torch_file_is_unreadable_not_code(tmp_path):
    (tmp_path / "bad.pt").write_bytes(bytes(range(7, 200)))
    result = cli(["inspect", tmp_path / "bad.pt"])
    assert result.exit_code == 1 and "not a valid torch.save() output" in result.stderr


def test_pickled_npz_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    result = cli(["inspect", tmp_path / "obj.npz"])
    assert result.exit_code == 1 and "never unpickles" in _err(result)


def test_torch_missing_says_how_to_install(weight_files, monkeypatch, tmp_path):
    from reuse.core.errors import ModelLoadError
    from reuse.formats import weight_files as wf

    path = tmp_path / "w.pt"
    path.write_bytes(b"PK")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(ModelLoadError, match="needs torch") as err:
        wf.read_tensors(path)
    assert "pip install" in err.value.hint


# --- PyTorch → Keras, checked against PyTorch's outputs -----------------------------------


@needs_torch
def test_torch_mlp_with_batchnorm_matches_pytorch(weight_files, tmp_path):
    net = _torch_mlp()
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        np.save(tmp_path / "y.npy", net(torch.from_numpy(x)).numpy())
    out = tmp_path / "mlp.keras"
    result = cli(
        [
            "import-weights",
            weight_files["pt"][0],
            "--arch",
            MLP_ARCH,
            "-o",
            out,
            "--strict",
            "--check",
            tmp_path / "x.npy",
            "--reference",
            tmp_path / "y.npy",
            "--tolerance",
            "1e-5",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["command"] == "import-weights" and rec["model"] == str(out.resolve())
    assert rec["import"]["check"]["max_abs_diff"] <= 1e-5
    counts = rec["import"]["counts"]
    assert (
        counts["assigned"] == 10 and counts["unused"] == 0 and counts["targets_left_at_init"] == 0
    )
    status = {r["name"]: r for r in rec["import"]["tensors"]}
    assert status["bn.num_batches_tracked"]["status"] == "known, unused"
    assert (
        status["fc1.weight"]["target"] == "fc1/kernel"
        and status["bn.running_var"]["target"] == "bn/moving_variance"
    )
    import keras

    model = keras.models.load_model(out)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(model(x, training=False).numpy() - expected)) <= 1e-5


@needs_torch
def test_full_checkpoint_and_safetensors_give_the_same_model(weight_files, tmp_path):
    from safetensors.numpy import save_file

    from reuse.weights.importer import import_weights

    net = _torch_mlp()
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

    net = _torch_mlp()
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


@needs_torch
def test_batchnorm_epsilon_difference_is_warned(weight_files, tmp_path):
    arch = MLP_ARCH.replace("batchnorm:eps=1e-5", "batchnorm")
    result = cli(
        ["import-weights", weight_files["pt"][0], "--arch", arch, "-o", tmp_path / "m.keras"]
    )
    assert result.exit_code == 0, result.stderr
    assert "epsilon=0.001" in result.stderr and "1e-05" in result.stderr


# --- TensorFlow checkpoints: restore only some layers --------------------------------------


def test_tf1_checkpoint_restores_only_hidden123(tmp_path):
    import keras

    values = _tf1_checkpoint(tmp_path / "old" / "model.ckpt")
    keras.utils.set_random_seed(5)
    new = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(6, activation="elu", name=f"hidden{i}") for i in (1, 2, 3)]
        + [
            keras.layers.Dense(4, activation="elu", name="hidden4"),
            keras.layers.Dense(2, activation="softmax", name="output"),
        ]
    )
    new.save(tmp_path / "arch.keras")
    initial = {
        (layer.name, i): w.numpy().copy()
        for layer in new.layers
        for i, w in enumerate(layer.weights)
    }
    out = tmp_path / "new.keras"
    result = cli(
        [
            "import-weights",
            tmp_path / "old" / "model.ckpt",
            "--into",
            tmp_path / "arch.keras",
            "--layers",
            "hidden[123]",
            "-o",
            out,
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    model = keras.models.load_model(out)
    for i in (1, 2, 3):
        layer = model.get_layer(f"hidden{i}")
        np.testing.assert_array_equal(layer.kernel.numpy(), values[f"hidden{i}/kernel"])
        np.testing.assert_array_equal(layer.bias.numpy(), values[f"hidden{i}/bias"])
    for name in ("hidden4", "output"):
        for i, w in enumerate(model.get_layer(name).weights):
            np.testing.assert_array_equal(w.numpy(), initial[(name, i)])
    rec = last_record(result.stdout)
    status = {r["name"]: r["status"] for r in rec["import"]["tensors"]}
    assert (
        status["output/kernel"] == "not selected"
        and status["hidden1/kernel/Adam"] == "optimizer state"
    )
    left = {t["weight"] for t in rec["import"]["targets"] if t["status"] == "left at init"}
    assert left == {"hidden4/kernel", "hidden4/bias", "output/kernel", "output/bias"}


def test_tf1_checkpoint_without_layers_names_the_mismatch(tmp_path):
    import keras

    _tf1_checkpoint(tmp_path / "old" / "model.ckpt")
    arch = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(6, name=f"hidden{i}") for i in (1, 2, 3)]
        + [keras.layers.Dense(2, name="output")]
    )
    arch.save(tmp_path / "arch.keras")
    result = cli(
        [
            "import-weights",
            tmp_path / "old" / "model.ckpt",
            "--into",
            tmp_path / "arch.keras",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert result.exit_code == 1
    assert (
        "output/kernel" in result.stderr
        and "(6, 10)" in result.stderr
        and "(6, 2)" in result.stderr
    )
    assert "--layers" in result.stderr and not (tmp_path / "o.keras").exists()
    ok = cli(
        [
            "import-weights",
            tmp_path / "old" / "model.ckpt",
            "--into",
            tmp_path / "arch.keras",
            "-o",
            tmp_path / "o.keras",
            "--skip-mismatched",
        ]
    )
    assert ok.exit_code == 0, ok.stderr


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


# --- .npz, Keras sources, --map -------------------------------------------------------------


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


def test_keras_model_source_with_layers_regex(tmp_path):
    import keras

    source = mlp(seed=0)
    source.save(tmp_path / "base.keras")
    source.save_weights(tmp_path / "base.weights.h5")
    target = mlp(seed=1, n_out=5)
    target.save(tmp_path / "arch.keras")
    for src in ("base.keras", "base.weights.h5"):
        out = tmp_path / f"from_{src}.keras"
        result = cli(
            [
                "import-weights",
                tmp_path / src,
                "--into",
                tmp_path / "arch.keras",
                "--layers",
                "hidden[12]",
                "-o",
                out,
                "--json",
            ]
        )
        assert result.exit_code == 0, result.stderr
        model = keras.models.load_model(out)
        for name in ("hidden1", "hidden2"):
            for a, b in zip(
                model.get_layer(name).weights, source.get_layer(name).weights, strict=True
            ):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
        for name in ("hidden3", "output"):
            for a, b in zip(
                model.get_layer(name).weights, target.get_layer(name).weights, strict=True
            ):
                np.testing.assert_array_equal(a.numpy(), b.numpy())


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


# --- errors --------------------------------------------------------------------------------


def test_shape_mismatch_suggests_the_transpose(tmp_path):
    np.savez(tmp_path / "w.npz", **{"hidden1/kernel": np.ones((6, 8), "float32")})
    result = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--arch",
            "input:8,dense:6:name=hidden1",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert result.exit_code == 1
    assert (
        "(6, 8)" in result.stderr
        and "(8, 6)" in result.stderr
        and "transpose(1, 0)" in result.stderr
    )


def test_empty_and_ambiguous_matches(tmp_path):
    np.savez(tmp_path / "none.npz", **{"foo/kernel": np.ones((8, 6), "float32")})
    result = cli(
        [
            "import-weights",
            tmp_path / "none.npz",
            "--arch",
            "input:8,dense:6:name=hidden1",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert result.exit_code == 1 and "no tensor" in result.stderr and "--map" in result.stderr
    np.savez(
        tmp_path / "two.npz",
        **{
            "enc.hidden1.weight": np.ones((6, 8), "float32"),
            "dec.hidden1.weight": np.ones((6, 8), "float32"),
        },
    )
    result = cli(
        [
            "import-weights",
            tmp_path / "two.npz",
            "--arch",
            "input:8,dense:6:name=hidden1",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert result.exit_code == 1 and "ambiguous" in result.stderr
    assert "enc.hidden1.weight" in result.stderr and "dec.hidden1.weight" in result.stderr


def test_recurrent_layers_are_refused_by_name(tmp_path):
    import keras

    arch = keras.Sequential([keras.Input((5, 4)), keras.layers.LSTM(3, name="rnn")])
    arch.save(tmp_path / "rnn.keras")
    np.savez(tmp_path / "w.npz", **{"rnn.weight_ih_l0": np.ones((12, 4), "float32")})
    result = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--into",
            tmp_path / "rnn.keras",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert (
        result.exit_code == 1 and "'rnn' (LSTM)" in result.stderr and "recurrent" in result.stderr
    )


def test_usage_errors(tmp_path, mlp_path):
    np.savez(tmp_path / "w.npz", **{"hidden1/kernel": np.ones((8, 6), "float32")})
    both = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--into",
            mlp_path,
            "--arch",
            "input:8",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert both.exit_code == 2 and "exactly one of --into and --arch" in both.stderr
    same = cli(["import-weights", tmp_path / "w.npz", "--into", mlp_path, "-o", mlp_path])
    assert same.exit_code == 1 and "is the input file" in same.stderr
    spec = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--arch",
            "input:8,dense:6,dnese:3",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert spec.exit_code == 2 and "dnese" in spec.stderr and "dense" in spec.stderr
    missing = cli(
        ["import-weights", tmp_path / "nope.pt", "--into", mlp_path, "-o", tmp_path / "o.keras"]
    )
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_pipeline_record_feeds_the_next_command(tmp_path):
    np.savez(
        tmp_path / "w.npz",
        **{"hidden1/kernel": np.ones((8, 6), "float32"), "hidden1/bias": np.ones(6, "float32")},
    )
    out = tmp_path / "new.keras"
    first = cli(
        [
            "import-weights",
            tmp_path / "w.npz",
            "--arch",
            "input:8,dense:6:relu:name=hidden1,dense:3:softmax:name=output",
            "-o",
            out,
        ]
    )
    assert first.exit_code == 0, first.stderr
    assert "left at init: output/kernel, output/bias" in first.stderr
    rec = last_record(first.stdout)  # stdout is not a terminal: the record, one JSON line
    assert rec["model"] == str(out.resolve()) and rec["import"]["counts"]["assigned"] == 2
    second = cli(["inspect", "--format", "json"], input=first.stdout)
    assert second.exit_code == 0, second.stderr
    rows = json.loads(second.stdout)["rows"]
    assert [r["name"] for r in rows if r["class"] != "InputLayer"] == ["hidden1", "output"]
