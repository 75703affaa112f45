"""`reuse inspect` on models: rows, totals, weights, every model format (the TF-free fast path,
SavedModel exports, .weights.h5 with --arch), nested models, errors, records on stdin."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest

from tests.helpers import cli, mlp, nested_application, shell


def test_inspect_rows_and_totals_json(mlp_path):
    result = cli(["inspect", mlp_path, "--format", "json", "--full-load"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    names = [r["name"] for r in data["rows"]]
    assert names == ["hidden1", "hidden2", "hidden3", "hidden4", "hidden5", "output"]
    first = data["rows"][0]
    assert first["class"] == "Dense" and first["params"] == 8 * 6 + 6 and first["trainable"] is True
    assert first["output_shape"] == [None, 6]
    assert data["trainable_params"] == 8 * 6 + 6 + 4 * (6 * 6 + 6) + 6 * 3 + 3
    assert data["frozen_params"] == 0


def test_inspect_csv(mlp_path):
    result = cli(["inspect", mlp_path, "--format", "csv", "--full-load"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows][:2] == ["hidden1", "hidden2"]
    assert rows[0]["output_shape"] == "Nonex6"


def test_inspect_table_has_totals(mlp_path):
    result = cli(["inspect", mlp_path, "--full-load"])
    assert result.exit_code == 0
    assert "hidden3" in result.stdout and "Total params" in result.stdout


def test_inspect_weights_stats(tmp_path):
    model = mlp()
    w = model.get_layer("hidden1").kernel
    value = np.asarray(w.numpy())
    value[:4] = 0.0
    w.assign(value)
    path = tmp_path / "m.keras"
    model.save(path)
    result = cli(["inspect", path, "--weights", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    kernel = next(r for r in rows if r["layer"] == "hidden1" and r["shape"] == [8, 6])
    assert kernel["zeros"] == pytest.approx(24 / 48)
    assert kernel["dtype"] == "float32"
    assert kernel["min"] <= kernel["mean"] <= kernel["max"]


@pytest.mark.slow
def test_inspect_nested_application_shows_inner_layers_frozen(tmp_path):
    path = tmp_path / "transfer.keras"
    nested_application().save(path)
    result = cli(["inspect", path, "--format", "json", "--full-load"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    inner = [r for r in rows if r["name"].startswith("mobilenetv2_0.35_32/")]
    assert len(inner) > 50
    assert all(not r["trainable"] for r in inner if r["params"])
    top = next(r for r in rows if r["name"] == "output")
    assert top["trainable"]


def test_lambda_refused_without_unsafe(tmp_path):
    import keras

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(
        keras.layers.Dense(3, name="d")(inp)
    )
    path = tmp_path / "lam.keras"
    keras.Model(inp, out).save(path)
    result = cli(["inspect", path, "--full-load"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:") and "--unsafe" in result.stderr
    assert "Traceback" not in result.stderr
    ok = cli(["inspect", path, "--full-load", "--unsafe", "--format", "json"])
    assert ok.exit_code == 0, ok.stderr
    assert "double" in ok.stdout


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.keras", "no such file"),
        (lambda d: (d / "folder").mkdir() or d / "folder", "not a SavedModel"),
        (
            lambda d: (
                (d / "random.keras").write_bytes(np.random.default_rng(0).bytes(500))
                and d / "random.keras"
            ),
            "not a valid .keras",
        ),
        (
            lambda d: (d / "model.tflite").write_bytes(b"x") and d / "model.tflite",
            "unsupported model format",
        ),
    ],
)
def test_errors_are_one_line(tmp_path, make, expected):
    path = make(tmp_path)
    result = cli(["inspect", path])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0], result.stderr
    assert " — " in lines[0]


def test_truncated_keras_zip(tmp_path, mlp_path):
    data = mlp_path.read_bytes()
    bad = tmp_path / "trunc.keras"
    bad.write_bytes(data[: len(data) // 2])
    result = cli(["inspect", bad])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr


def test_hdf5_without_model(tmp_path):
    import h5py

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["numbers"] = np.arange(5)
    result = cli(["inspect", path])
    assert result.exit_code == 1
    assert "holds no Keras model" in result.stderr


def test_reuse_debug_shows_traceback(tmp_path):
    result = shell(
        f"reuse inspect {tmp_path / 'nope.keras'}", tmp_path, env_extra={"REUSE_DEBUG": "1"}
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_inspect_reads_record_from_stdin(mlp_path, tmp_path):
    record = json.dumps({"reuse": "0.1.0", "command": "freeze", "model": str(mlp_path)})
    result = shell("reuse inspect --format json", tmp_path, stdin=record + "\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"][0]["name"] == "hidden1"


def test_python_m_reuse_and_help_without_tensorflow(tmp_path):
    result = shell("python -X importtime -m reuse --help", tmp_path)
    assert result.returncode == 0
    assert "inspect" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "tensorflow" not in imported and "keras" not in imported


def test_cli_inspect_keras_does_not_import_tensorflow(tmp_path, mlp_path):
    result = shell(f"python -X importtime -m reuse inspect {mlp_path} --format json", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "tensorflow" not in imported and "keras" not in imported
    assert json.loads(result.stdout)["rows"][0]["name"] == "hidden1"


def test_savedmodel_export_signatures_and_variables(tmp_path):
    folder = tmp_path / "exported"
    mlp().export(folder, verbose=False)
    result = cli(["inspect", folder, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "savedmodel"
    serve = data["info"]["signatures"]["serve"]
    assert serve["inputs"] == [{"name": "features", "shape": [None, 8], "dtype": "float32"}]
    assert serve["outputs"][0]["shape"] == [None, 3]
    kernels = [r for r in data["rows"] if r["variable"] == "kernel"]
    assert [r["layer"].rsplit("/", 1)[-1] for r in kernels][:2] == ["hidden1", "hidden2"]
    assert data["total_params"] == mlp().count_params()
    table = cli(["inspect", folder])
    assert (
        "signature serve(features: float32 (None, 8)) -> output_0: float32 (None, 3)"
        in table.stdout
    )


def test_inspect_weights_h5_with_arch(tmp_path):
    model = mlp()
    model.save(tmp_path / "arch.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    result = cli(
        [
            "inspect",
            tmp_path / "m.weights.h5",
            "--arch",
            tmp_path / "arch.keras",
            "--format",
            "json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["rows"]][-1] == "output"
    wrong = cli(["inspect", tmp_path / "m.weights.h5", "--arch", tmp_path / "nope.keras"])
    assert (
        wrong.exit_code == 1 and wrong.stderr.startswith("Error:") and "nope.keras" in wrong.stderr
    )


def test_keras_zip_without_config_is_one_line_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("readme.txt", "hello")
    result = cli(["inspect", tmp_path / "other.keras"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no config.json" in lines[0]
