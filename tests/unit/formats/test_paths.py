"""`reuse.formats.paths.classify`: each kind from real tiny files, and the callers that ask it."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest

from reuse.core.errors import DataError, ModelLoadError
from reuse.formats.paths import (
    CACHE_MARK,
    PathKind,
    checkpoint_prefix,
    classify,
    is_idx_name,
)


def _keras_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        z.writestr("metadata.json", "{}")
    return path


def _h5(path, attrs=None, groups=(), datasets=None):
    with h5py.File(path, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        for g in groups:
            f.create_group(g)
        for key, value in (datasets or {}).items():
            f[key] = value
    return path


def _checkpoint(prefix):
    prefix.parent.mkdir(parents=True, exist_ok=True)
    (prefix.parent / (prefix.name + ".index")).write_bytes(b"index")
    (prefix.parent / (prefix.name + ".data-00000-of-00001")).write_bytes(b"data")
    return prefix


def _idx(path):
    # an MNIST-style header: uint8, 1 dimension of 3 values
    path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3]))
    return path


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda d: _keras_zip(d / "m.keras"), PathKind.KERAS),
        (lambda d: _h5(d / "m.h5", {"model_config": "{}"}, ["model_weights"]), PathKind.H5_MODEL),
        (lambda d: _h5(d / "m.weights.h5", groups=["layers"]), PathKind.WEIGHTS_H5),
        # a tf.keras 2 `save_weights("w.h5")`: weights only, whatever the name says
        (lambda d: _h5(d / "w.h5", {"layer_names": [b"dense"]}), PathKind.WEIGHTS_H5),
        (lambda d: _h5(d / "v.hdf5", groups=["vars"]), PathKind.WEIGHTS_H5),
        (lambda d: _h5(d / "feats.h5", {CACHE_MARK: 1}, ["features"]), PathKind.FEATURE_CACHE),
        (lambda d: _h5(d / "data.h5", datasets={"x": np.zeros((2, 3))}), PathKind.HDF5),
        (lambda d: _h5(d / "data.hdf", datasets={"x": np.zeros(2)}), PathKind.HDF5),
        (lambda d: (d / "broken.h5").write_bytes(b"not hdf5") and d / "broken.h5", PathKind.HDF5),
        (lambda d: (d / "w.pt").write_bytes(b"PK") and d / "w.pt", PathKind.TORCH),
        (lambda d: (d / "w.pth").write_bytes(b"PK") and d / "w.pth", PathKind.TORCH),
        (
            lambda d: (d / "pytorch_model.bin").write_bytes(b"PK") and d / "pytorch_model.bin",
            PathKind.TORCH,
        ),
        (
            lambda d: (d / "w.safetensors").write_bytes(b"{}") and d / "w.safetensors",
            PathKind.SAFETENSORS,
        ),
        (lambda d: np.savez(d / "a.npz", x=np.zeros(2)) or d / "a.npz", PathKind.NPZ),
        (lambda d: np.save(d / "a.npy", np.zeros(2)) or d / "a.npy", PathKind.NPY),
        (lambda d: (d / "t.csv").write_text("a,b\n1,2\n") and d / "t.csv", PathKind.CSV),
        (lambda d: _idx(d / "train-images-idx3-ubyte"), PathKind.IDX),
        (lambda d: _idx(d / "t10k-labels-idx1-ubyte.gz"), PathKind.IDX),
        (lambda d: (d / "model.tflite").write_bytes(b"x") and d / "model.tflite", PathKind.UNKNOWN),
        (lambda d: (d / "model.onnx").write_bytes(b"x") and d / "model.onnx", PathKind.ONNX),
        (lambda d: d / "nothing.keras", PathKind.MISSING),
    ],
    ids=lambda v: v.value if isinstance(v, PathKind) else "",
)
def test_each_file_kind(tmp_path, make, kind):
    assert classify(make(tmp_path)) is kind


def test_savedmodel_folders(tmp_path):
    export = tmp_path / "exported"
    (export / "variables").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"pb")
    (export / "variables" / "variables.index").write_bytes(b"index")
    assert classify(export) is PathKind.KERAS_EXPORT
    (export / "keras_metadata.pb").write_bytes(b"meta")
    assert classify(export) is PathKind.SAVEDMODEL
    text = tmp_path / "text"
    text.mkdir()
    (text / "saved_model.pbtxt").write_text("meta_graphs {}")
    assert classify(text) is PathKind.KERAS_EXPORT


def test_checkpoint_prefix_its_files_and_its_folder(tmp_path):
    prefix = _checkpoint(tmp_path / "run" / "model.ckpt")
    assert not prefix.exists()  # the prefix names files, it is no file itself
    for path in (prefix, f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        assert classify(path) is PathKind.TF_CHECKPOINT
        assert checkpoint_prefix(path) == prefix
    assert classify(prefix.parent) is PathKind.TF_CHECKPOINT
    assert checkpoint_prefix(prefix.parent) == prefix


def test_checkpoint_folder_follows_its_state_file(tmp_path):
    folder = tmp_path / "ckpts"
    old = _checkpoint(folder / "ckpt-1")
    new = _checkpoint(folder / "ckpt-2")
    (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    assert checkpoint_prefix(folder) == old
    (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')
    assert checkpoint_prefix(folder) == new
    assert classify(folder) is PathKind.TF_CHECKPOINT


def test_stray_checkpoint_files_without_their_index(tmp_path):
    for name in ("model.ckpt", "model.ckpt.meta", "model.ckpt.data-00000-of-00001"):
        (tmp_path / name).write_bytes(b"x")
        assert classify(tmp_path / name) is PathKind.CHECKPOINT_PART, name
    assert checkpoint_prefix(tmp_path / "model.ckpt") is None


def test_data_folders(tmp_path):
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    (images / "cat" / "a.png").write_bytes(b"png")
    assert classify(images) is PathKind.IMAGE_FOLDER
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    _idx(mnist / "train-images-idx3-ubyte.gz")
    assert classify(mnist) is PathKind.IDX_FOLDER


def test_idx_names():
    assert is_idx_name("train-images-idx3-ubyte")
    assert is_idx_name("dir/T10K-LABELS-IDX1-UBYTE.GZ")
    assert is_idx_name("digits.idx")
    assert not is_idx_name("idx.npz") and not is_idx_name("images.gz")


def test_keras_files_are_classified_without_h5py(tmp_path):
    from tests.helpers import shell

    path = _keras_zip(tmp_path / "m.keras")
    code = (
        "import sys; from reuse.formats.paths import classify; "
        f"print(classify({str(path)!r}).value, 'h5py' in sys.modules)"
    )
    result = shell(f'python -c "{code}"', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["keras", "False"]


# --- the callers keep their own words --------------------------------------------------------


def test_model_kind_maps_kinds_and_keeps_its_errors(tmp_path):
    from reuse.formats.model_io import model_kind

    assert model_kind(_keras_zip(tmp_path / "m.keras")) == "keras"
    assert model_kind(_h5(tmp_path / "m.h5", {"model_config": "{}"})) == "h5"
    assert model_kind(_h5(tmp_path / "d.h5", datasets={"x": np.zeros(2)})) == "h5"
    assert model_kind(_h5(tmp_path / "m.weights.h5", groups=["layers"])) == "weights_h5"
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"pb")
    assert model_kind(sm) == "keras_export"
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    (tmp_path / "model.tflite").write_bytes(b"x")
    cases = [
        ("missing.keras", "no such file or folder"),
        ("empty", "is a folder but not a SavedModel"),
        ("junk.keras", "not a valid .keras file"),
        ("model.tflite", "unsupported model format '.tflite'"),
    ]
    for name, message in cases:
        with pytest.raises(ModelLoadError, match=message):
            model_kind(tmp_path / name)


def test_weight_format_maps_kinds_and_keeps_its_errors(tmp_path):
    from reuse.formats.weight_files import detect_format

    assert detect_format(np.savez(tmp_path / "w.npz", a=np.zeros(1)) or tmp_path / "w.npz") == "npz"
    assert detect_format(_h5(tmp_path / "w.h5", {"layer_names": [b"d"]})) == "keras_h5_legacy"
    assert detect_format(_checkpoint(tmp_path / "ck" / "model.ckpt")) == "tf_checkpoint"
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(
        ModelLoadError, match=r"no TensorFlow checkpoint files next to it \(no model.ckpt.index\)"
    ):
        detect_format(tmp_path / "model.ckpt")
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        detect_format(tmp_path / "gone.pt")
    np.save(tmp_path / "a.npy", np.zeros(1))
    with pytest.raises(ModelLoadError, match=r"not a weight file reuse reads \('.npy'\)"):
        detect_format(tmp_path / "a.npy")
    with pytest.raises(ModelLoadError, match="HDF5 file without Keras weights"):
        detect_format(_h5(tmp_path / "d.h5", datasets={"x": np.zeros(2)}))


def test_data_reader_kind_maps_kinds_and_keeps_its_error(tmp_path):
    from reuse.data.readers import _kind

    assert _kind(_h5(tmp_path / "m.weights.h5", groups=["layers"])) == "h5"
    assert _kind(_h5(tmp_path / "feats.h5", {CACHE_MARK: 1})) == "h5"
    assert _kind(np.savez(tmp_path / "a.npz", x=np.zeros(1)) or tmp_path / "a.npz") == "npz"
    assert _kind(_idx(tmp_path / "train-images-idx3-ubyte")) == "idx"
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"pb")
    assert _kind(sm) == "image-folder"
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match=r"d.parquet: unsupported data format '.parquet'"):
        _kind(tmp_path / "d.parquet")


def test_importer_reads_whole_models_as_models(tmp_path):
    from reuse.weights.importer import _is_keras_model_file

    assert _is_keras_model_file(_keras_zip(tmp_path / "m.keras"))
    assert _is_keras_model_file(_h5(tmp_path / "m.h5", {"model_config": "{}"}))
    assert not _is_keras_model_file(_h5(tmp_path / "w.h5", {"layer_names": [b"d"]}))
    assert not _is_keras_model_file(_h5(tmp_path / "m.weights.h5", groups=["layers"]))
    assert not _is_keras_model_file(tmp_path / "missing.keras")
