"""ONNX sources: `import-weights` reads an .onnx file's initializers (the onnx package, no
runtime) with the PyTorch name mapping, layout conversion and --check; `inspect` lists them.
Skips without onnx or torch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cli
from tests.weight_sources import MLP_ARCH, needs_torch, torch, torch_mlp

onnx = pytest.importorskip("onnx")
pytestmark = needs_torch


def _mlp_onnx(path, net):
    """The MLP as PyTorch's exporter writes it: Gemm(transB=1) nodes, state-dict names."""
    from onnx import TensorProto, helper, numpy_helper

    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    inits = [numpy_helper.from_array(v, k) for k, v in state.items() if v.dtype != np.int64]
    inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "onnx::Reshape_0"))
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
        helper.make_node(
            "BatchNormalization",
            ["h1", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
            ["h2"],
        ),
        helper.make_node("Relu", ["h2"], ["h3"]),
        helper.make_node("Gemm", ["h3", "fc2.weight", "fc2.bias"], ["h4"], transB=1),
        helper.make_node("Relu", ["h4"], ["h5"]),
        helper.make_node("Gemm", ["h5", "out.weight", "out.bias"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph, producer_name="test"), str(path))
    return path


def test_import_weights_from_onnx_matches_torch(tmp_path):
    net = torch_mlp()
    path = _mlp_onnx(tmp_path / "mlp.onnx", net)
    x = np.random.default_rng(0).normal(size=(6, 8)).astype("float32")
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    result = cli(
        [
            "import-weights",
            path,
            "--arch",
            MLP_ARCH,
            "-o",
            tmp_path / "m.keras",
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
    import json

    rec = json.loads(result.stdout.strip().splitlines()[-1])
    assert rec["metrics"]["max_abs_diff"] < 1e-5
    counts = rec["import"]["counts"]
    assert counts["assigned"] == 10 and counts["targets_left_at_init"] == 0
    assert counts["known_unused"] == 1  # the int64 shape constant


def test_inspect_lists_onnx_initializers(tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx", torch_mlp())
    result = cli(["inspect", path])
    assert result.exit_code == 0, result.stderr
    assert "fc1.weight" in result.stdout and "(7, 8)" in result.stdout
    assert "ONNX" in result.stdout


def test_a_damaged_onnx_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \x00\x01")
    result = cli(["inspect", bad])
    assert result.exit_code != 0 and "ONNX" in result.stderr
