"""`reuse cache-features`: taps, refusals, the HDF5 format, resume after a kill, pipes, and `reuse
inspect` on a cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.helpers import (
    ROOT,
    classification_data,
    cli,
    last_record,
    mlp,
    residual,
    save_npz,
    shell,
    wait_for_part_rows,
)


def _attrs(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def test_cli_refuses_cut_crossed_by_skip(tmp_path, data_path):
    path = tmp_path / "res.keras"
    residual().save(path)
    result = cli(
        ["cache-features", path, "--data", data_path, "--at", "branch_a", "-o", tmp_path / "f.h5"]
    )
    assert result.exit_code == 1
    assert "Error: cannot cut at 'branch_a': a skip connection crosses it" in result.stderr
    assert "nearest valid cut points: below 'stem', above 'add'" in result.stderr
    assert not (tmp_path / "f.h5").exists()


def test_multi_tap_one_pass_values_and_record(tmp_path, frozen_path, data_path):
    import keras

    from reuse.surgery import cuts

    out = tmp_path / "f.h5"
    result = cli(
        [
            "cache-features",
            frozen_path,
            "--data",
            data_path,
            "--at",
            "hidden3,hidden1",
            "-o",
            out,
            "--batch-size",
            "32",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["command"] == "cache-features" and rec["features"] == str(out.resolve())
    assert rec["taps"] == ["hidden1", "hidden3"] and rec["cut"] == "hidden3" and rec["rows"] == 100
    model = keras.models.load_model(frozen_path)
    x, y = np.load(data_path)["x"], np.load(data_path)["y"]
    h1, h3 = cuts.bottom_model(model, ["hidden1", "hidden3"])(x, training=False)
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["features/hidden1"][...], np.asarray(h1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f["features/hidden3"][...], np.asarray(h3), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(f["labels"][...], y)
        np.testing.assert_array_equal(f["indices"][...], np.arange(100))
        assert f["features/hidden1"].chunks == (32, 6)
        assert f["features/hidden1"].dtype == np.float32


def test_default_tap_attrs_and_complete_last(tmp_path, frozen_path, data_path):
    out = tmp_path / "f.h5"
    result = cli(
        ["cache-features", frozen_path, "--data", data_path, "-o", out, "--batch-size", "16"]
    )
    assert result.exit_code == 0, result.stderr
    attrs = _attrs(out)
    for key in (
        "reuse_feature_cache",
        "reuse_version",
        "fingerprint",
        "fingerprint_architecture",
        "fingerprint_weights",
        "taps",
        "data_identity",
        "class_map",
        "batch_size",
        "rows",
        "rows_done",
    ):
        assert key in attrs
    assert json.loads(attrs["taps"]) == ["hidden3"]  # the top frozen layer
    identity = json.loads(attrs["data_identity"])
    assert (
        identity["path"] == str(data_path.resolve())
        and len(identity["sha256"]) == 64
        and identity["size"] > 0
    )
    assert attrs["complete"] and attrs["batch_size"] == 16 and attrs["rows_done"] == 100
    with h5py.File(out, "r") as f:
        assert list(f.attrs)[-1] == "complete"
        assert f["features/hidden3"].chunks == (16, 6)
    assert not list(tmp_path.glob(".*part*"))


def test_no_frozen_layers_no_default(tmp_path, data_path):
    path = tmp_path / "m.keras"
    mlp().save(path)
    result = cli(["cache-features", path, "--data", data_path])
    assert result.exit_code == 2
    assert "has no frozen layers" in result.stderr and "--at" in result.stderr


def test_compression_options(tmp_path, frozen_path, data_path):
    for spec, expect in (("lzf", ("lzf", None)), ("gzip:6", ("gzip", 6)), ("none", (None, None))):
        out = tmp_path / f"{spec.replace(':', '')}.h5"
        result = cli(
            [
                "cache-features",
                frozen_path,
                "--data",
                data_path,
                "-o",
                out,
                "--compression",
                spec,
                "--verify",
                "0",
            ]
        )
        assert result.exit_code == 0, result.stderr
        with h5py.File(out, "r") as f:
            ds = f["features/hidden3"]
            assert (ds.compression, ds.compression_opts) == expect
    bad = cli(
        [
            "cache-features",
            frozen_path,
            "--data",
            data_path,
            "-o",
            tmp_path / "x.h5",
            "--compression",
            "zstd",
        ]
    )
    assert bad.exit_code == 2 and "unknown compression 'zstd'" in bad.stderr
    bad = cli(
        [
            "cache-features",
            frozen_path,
            "--data",
            data_path,
            "-o",
            tmp_path / "x.h5",
            "--compression",
            "gzip:12",
        ]
    )
    assert bad.exit_code == 2 and "gzip level must be 0-9" in bad.stderr


def test_dropout_note_and_augmentation_refusal(tmp_path, data_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(6, name="d1"),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.GaussianNoise(0.1, name="noise"),
            keras.layers.Dense(6, name="d2"),
            keras.layers.Dense(3, name="output"),
        ]
    )
    for layer in model.layers[:4]:
        layer.trainable = False
    path = tmp_path / "drop.keras"
    model.save(path)
    result = cli(["cache-features", path, "--data", data_path, "-o", tmp_path / "f.h5"])
    assert result.exit_code == 0, result.stderr
    assert "caching runs drop, noise in inference mode" in result.stderr
    assert json.loads(_attrs(tmp_path / "f.h5")["taps"]) == ["d2"]

    keras.utils.set_random_seed(0)
    aug = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.RandomFlip("horizontal", name="flip"),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, name="output"),
        ]
    )
    for layer in aug.layers[:3]:
        layer.trainable = False
    apath = tmp_path / "aug.keras"
    aug.save(apath)
    x = np.random.default_rng(0).uniform(size=(10, 12, 12)).astype("float32")  # no channel axis
    img = save_npz(tmp_path / "img.npz", x, np.arange(10) % 3)
    result = cli(["cache-features", apath, "--data", img, "-o", tmp_path / "a.h5"])
    assert result.exit_code == 2
    assert (
        "augmentation layers (flip)" in result.stderr
        and "--allow-augmentation-skip" in result.stderr
    )
    result = cli(
        [
            "cache-features",
            apath,
            "--data",
            img,
            "-o",
            tmp_path / "a.h5",
            "--allow-augmentation-skip",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "augmentation layers flip in inference mode" in result.stderr
    assert _attrs(tmp_path / "a.h5")["input_adapter"] == "add-channel"


def test_input_shape_mismatch(tmp_path, frozen_path):
    x = np.zeros((10, 5), dtype="float32")
    data = save_npz(tmp_path / "bad.npz", x, np.zeros(10, dtype="int64"))
    result = cli(["cache-features", frozen_path, "--data", data, "-o", tmp_path / "f.h5"])
    assert result.exit_code == 1
    assert (
        "input shape (5,) does not fit the model's input" in result.stderr
        and "(8,)" in result.stderr
    )


def test_flatten_adapter(tmp_path, data_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(4, name="h", trainable=False),
            keras.layers.Dense(2, name="output"),
        ]
    )
    path = tmp_path / "flat.keras"
    model.save(path)
    x = np.random.default_rng(0).uniform(size=(5, 28, 28)).astype("float32")
    data = save_npz(tmp_path / "img.npz", x, np.zeros(5, dtype="int64"))
    result = cli(["cache-features", path, "--data", data, "-o", tmp_path / "f.h5"])
    assert result.exit_code == 0, result.stderr
    with h5py.File(tmp_path / "f.h5", "r") as f:
        expect = np.asarray(model.get_layer("h")(x.reshape(5, -1)))
        np.testing.assert_allclose(f["features/h"][...], expect, rtol=1e-5, atol=1e-6)


def _comparable(path):
    out = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {
            k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in f.attrs.items()
            if k != "created"
        }
        out["attrs"] = {
            k: (v.item() if isinstance(v, np.generic) else v) for k, v in out["attrs"].items()
        }

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (
                    obj[...].tobytes(),
                    obj.dtype.str,
                    obj.shape,
                    obj.chunks,
                    dict(obj.attrs),
                )

        f.visititems(visit)
    return out


@pytest.mark.slow  # real processes, 5-7 s: in `make test-slow`
def test_resume_after_sigkill_is_identical(tmp_path, frozen_path):
    from reuse.cache import cache_features, part_path
    from reuse.data.dataset import load_data

    # 3,000 rows: the forward pass runs 500 rows (25 batches of 20) per call, so six calls.
    x, y = classification_data(3000)
    data = save_npz(tmp_path / "d.npz", x, y)
    out = tmp_path / "killed.h5"
    part = part_path(out)
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), REUSE_TEST_BATCH_DELAY="1.5", TF_CPP_MIN_LOG_LEVEL="3"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reuse",
            "cache-features",
            str(frozen_path),
            "--data",
            str(data),
            "-o",
            str(out),
            "--batch-size",
            "20",
            "--at",
            "hidden1,hidden3",
            "--json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = wait_for_part_rows(proc, part, at_least=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < done < 3000 and part.exists() and not out.exists()

    from reuse.cache import open_cache
    from reuse.core.errors import CacheIncomplete

    with pytest.raises(CacheIncomplete, match="--resume"):
        open_cache(part)
    with pytest.raises(CacheIncomplete, match="--resume"):
        open_cache(out)
    inspected = cli(["inspect", part, "--format", "json"])
    assert json.loads(inspected.stdout)["info"]["complete"] is False

    result = cli(
        [
            "cache-features",
            frozen_path,
            "--data",
            data,
            "-o",
            out,
            "--batch-size",
            "20",
            "--at",
            "hidden1,hidden3",
            "--resume",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "Resuming" in result.stderr and not part.exists()
    import keras

    clean = tmp_path / "clean.h5"
    cache_features(
        keras.models.load_model(frozen_path),
        load_data(data),
        clean,
        taps=["hidden1", "hidden3"],
        batch_size=20,
        model_path=frozen_path,
    )
    a, b = _comparable(out), _comparable(clean)
    assert a["attrs"] == b["attrs"]
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


def test_resume_refuses_other_settings(tmp_path, frozen_path, data_path):
    import shutil

    from reuse.cache import part_path

    out = tmp_path / "f.h5"
    assert (
        cli(
            ["cache-features", frozen_path, "--data", data_path, "-o", out, "--batch-size", "10"]
        ).exit_code
        == 0
    )
    shutil.copy(out, part_path(out))
    result = cli(
        [
            "cache-features",
            frozen_path,
            "--data",
            data_path,
            "-o",
            out,
            "--batch-size",
            "20",
            "--resume",
        ]
    )
    assert result.exit_code == 1 and "different batch size" in result.stderr


def test_inspect_cache(tmp_path, frozen_path, data_path):
    out = tmp_path / "f.h5"
    assert (
        cli(
            [
                "cache-features",
                frozen_path,
                "--data",
                data_path,
                "-o",
                out,
                "--at",
                "hidden1,hidden2",
            ]
        ).exit_code
        == 0
    )
    result = cli(["inspect", out, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["kind"] == "cache"
    assert payload["info"]["complete"] is True and payload["info"]["taps"] == ["hidden1", "hidden2"]
    names = {r["dataset"] for r in payload["rows"]}
    assert names == {"features/hidden1", "features/hidden2", "labels", "indices"}
    table = cli(["inspect", out])
    assert "complete: True" in table.stdout and "features/hidden2" in table.stdout


@pytest.mark.slow  # real processes, 5-7 s: in `make test-slow`
def test_pipeline_from_record_on_stdin(tmp_path, frozen_path, data_path):
    record = json.dumps({"reuse": "0.1.0", "command": "freeze", "model": str(frozen_path)})
    result = shell(f"echo '{record}' | reuse cache-features --data {data_path} | cat", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["command"] == "cache-features" and rec["rows"] == 100 and rec["taps"] == ["hidden3"]
    assert rec["features"] == str(tmp_path / "frozen.features.h5")
    assert (tmp_path / "frozen.features.h5").exists()
    assert "Cached 100 rows" in result.stderr


def test_output_must_be_hdf5(frozen_path, data_path):
    result = cli(["cache-features", frozen_path, "--data", data_path, "-o", frozen_path])
    assert result.exit_code == 1 and "a feature cache is an HDF5 file" in result.stderr


def test_input_views_need_augmented_views(tmp_path, frozen_path, data_path):
    out = tmp_path / "f.h5"
    result = cli(["cache-features", frozen_path, "--data", data_path, "--input-views", "-o", out])
    assert result.exit_code == 2
    assert "Error: --input-views stores augmented views of the raw rows" in result.stderr
    assert not out.exists()
