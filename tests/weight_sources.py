"""Weight files of every source format for the import-weights and inspect tests: a small PyTorch
MLP (checked against PyTorch's own outputs), TF1 and TF2 checkpoints, .npz, .safetensors and Keras
.weights.h5. PyTorch is optional: `torch` is None without it and `needs_torch` skips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import mlp

try:
    import torch
    from torch import nn
except ImportError:  # the PyTorch tests skip cleanly
    torch = None
    nn = None


needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


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


def torch_mlp():
    """The MLP above, seeded and in eval mode."""
    torch.manual_seed(0)
    net = MLP()
    with torch.no_grad():  # BatchNorm stats that are not the identity, so a mix-up shows
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
    return net.eval()


MLP_ARCH = "input:8,dense:7:name=fc1,batchnorm:eps=1e-5:name=bn,activation:relu,dense:5:relu:name=fc2,dense:3:name=out"


def tf1_checkpoint(prefix, sizes=(8, 6, 6, 6, 10)):
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


def write_weight_files(d: Path) -> dict:
    """Write one small weight file per source format into folder `d`.

    Returns {format: (path, {tensor name: shape})} for npz, safetensors, weights.h5, tf1, tf2
    and, when torch is installed, pt and pth (plus whole.pt, a pickled module, next to them);
    "dir" maps to `d` itself.
    """
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
    tf1_checkpoint(d / "tf1" / "model.ckpt")
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
        net = torch_mlp()
        torch.save(net.state_dict(), d / "mlp.pt")
        files["pt"] = (d / "mlp.pt", {"fc1.weight": [7, 8], "bn.running_var": [7], "out.bias": [3]})
        torch.save({"state_dict": net.state_dict(), "epoch": 4}, d / "full.pth")
        files["pth"] = (d / "full.pth", {"fc1.weight": [7, 8], "bn.num_batches_tracked": []})
        torch.save(net, d / "whole.pt")
    files["dir"] = d
    return files
