"""`reuse import-weights` and `reuse inspect` on weight-only files: every source format, PyTorch
layouts checked against PyTorch's own outputs, partial restores, refusals and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli, last_record, mlp
from tests.weight_sources import MLP_ARCH, needs_torch, tf1_checkpoint, torch, torch_mlp


def _err(result) -> str:
    return result.stderr


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


@needs_torch
def test_torch_mlp_with_batchnorm_matches_pytorch(weight_files, tmp_path):
    net = torch_mlp()
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
def test_batchnorm_epsilon_difference_is_warned(weight_files, tmp_path):
    arch = MLP_ARCH.replace("batchnorm:eps=1e-5", "batchnorm")
    result = cli(
        ["import-weights", weight_files["pt"][0], "--arch", arch, "-o", tmp_path / "m.keras"]
    )
    assert result.exit_code == 0, result.stderr
    assert "epsilon=0.001" in result.stderr and "1e-05" in result.stderr


def test_tf1_checkpoint_restores_only_hidden123(tmp_path):
    import keras

    values = tf1_checkpoint(tmp_path / "old" / "model.ckpt")
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

    tf1_checkpoint(tmp_path / "old" / "model.ckpt")
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

    # LSTM, SimpleRNN and GRU(reset_after=True) are converted; this GRU's bias layout is not.
    arch = keras.Sequential(
        [keras.Input((5, 4)), keras.layers.GRU(3, reset_after=False, name="rnn")]
    )
    arch.save(tmp_path / "rnn.keras")
    np.savez(tmp_path / "w.npz", **{"rnn.weight_ih_l0": np.ones((9, 4), "float32")})
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
    assert result.exit_code == 1 and "'rnn' (GRU)" in result.stderr and "recurrent" in result.stderr


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
