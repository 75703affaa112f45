"""`reuse.inspection.describe.inspect`: each kind of path reaches its describer, errors keep their words."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from reuse.core.errors import ModelLoadError
from reuse.inspection import inspect


def _legacy_weights_h5(path):
    """What tf.keras 2 `model.save_weights("w.h5")` writes: weights, no architecture."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group["dense/kernel:0"] = np.ones((3, 2), "float32")
        group["dense/bias:0"] = np.zeros(2, "float32")
    return path


def test_weights_only_h5_is_listed_as_tensors(tmp_path):
    info = inspect(_legacy_weights_h5(tmp_path / "w.h5"))
    assert info.kind == "weights"
    assert {r["name"]: r["shape"] for r in info.rows} == {"dense/kernel": [3, 2], "dense/bias": [2]}
    assert info.info["parameters"] == 8


def test_npz_is_weights_to_inspect(tmp_path):
    np.savez(tmp_path / "w.npz", **{"hidden1/kernel": np.ones((4, 2), "float32")})
    info = inspect(tmp_path / "w.npz")
    assert info.kind == "weights" and info.rows[0]["name"] == "hidden1/kernel"
    assert info.rows[0]["mean"] == 1.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.h5", "no such file or folder"),
        (lambda d: (d / "folder").mkdir() or d / "folder", "is a folder but not a SavedModel"),
        (
            lambda d: (d / "model.tflite").write_bytes(b"x") and d / "model.tflite",
            "unsupported model format",
        ),
        (
            lambda d: (d / "m.ckpt").write_bytes(b"x") and d / "m.ckpt",
            "no TensorFlow checkpoint files",
        ),
    ],
)
def test_errors_keep_their_words(tmp_path, make, message):
    with pytest.raises(ModelLoadError, match=message):
        inspect(make(tmp_path))
