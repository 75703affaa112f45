"""`reuse tune`: its errors before any work, a tiny search end to end (best.json, the table of
trials, the plot), and `reuse finetune --config` with flags that override the file."""

from __future__ import annotations

import json
import sys

import pytest

from tests.helpers import cli, png_ok

try:
    import optuna  # noqa: F401

    HAVE_OPTUNA = True
except ImportError:
    HAVE_OPTUNA = False


def test_without_optuna_one_error_line_names_the_extra(tuning_task, monkeypatch):
    tmp, path, train, valid = tuning_task
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ModuleNotFoundError
    result = cli(["tune", path, "--data", train, "--val", valid, "-o", tmp / "b.json"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: this needs optuna")
    assert "pip install 'keras-reuse[tune]'" in lines[0]
    assert not (tmp / "b.json").exists()


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--space", "wd=0..1e-3"], 2, "log scale, so the low end must be > 0"),
        (["--space", "speed=1"], 2, "unknown name 'speed'"),
        (["--pruner", "fast"], 2, "--pruner must be one of median, hyperband, none"),
        (["--metric", "accuracy"], 2, "validation chooses"),
        (["--trials", "0"], 2, "--trials must be >= 1"),
        (["--plot", "s.pdf"], 2, "--plot writes a PNG"),
    ],
)
def test_bad_options_are_refused_before_any_work(tuning_task, extra, code, message):
    tmp, path, train, valid = tuning_task
    result = cli(["tune", path, "--data", train, "--val", valid, "-o", tmp / "b.json", *extra])
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert not (tmp / "b.study.db").exists()


@pytest.mark.skipif(not HAVE_OPTUNA, reason="optuna not installed (keras-reuse[tune])")
def test_validation_data_is_required(tuning_task):
    tmp, path, train, _ = tuning_task
    result = cli(["tune", path, "--data", train, "-o", tmp / "b.json"])
    assert result.exit_code == 2
    assert "tune needs validation data" in result.stderr and "--val-split" in result.stderr


def test_finetune_config_flags_on_the_command_line_override_the_file(tuning_task):
    tmp, path, train, valid = tuning_task
    config = tmp / "hand.json"
    config.write_text(json.dumps({"finetune": {"lr": 0.05, "l2": 1e-4, "epochs": 3}}))
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--val",
            valid,
            "--config",
            config,
            "--epochs",
            "1",
            "-o",
            tmp / "from-config.keras",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["stages"][0]["epochs"] == 1  # the flag won
    assert record["stages"][0]["lr"] == pytest.approx(0.05)  # the file's
    assert sorted(record["from_config"]) == ["l2", "lr"]
    report = json.loads((tmp / "from-config.report.json").read_text())
    assert report["options"]["l2"] == pytest.approx(1e-4)


def test_finetune_config_errors_name_the_key(tuning_task):
    tmp, path, train, _ = tuning_task
    config = tmp / "bad.json"
    config.write_text(json.dumps({"finetune": {"learning_rate": 0.05}}))
    result = cli(["finetune", path, "--data", train, "--config", config, "-o", tmp / "x.keras"])
    assert result.exit_code == 2
    assert "unknown option `learning_rate`" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_OPTUNA, reason="optuna not installed (keras-reuse[tune])")
def test_a_tiny_search_writes_best_json_a_table_a_plot_and_a_record(tuning_task):
    tmp, path, train, valid = tuning_task
    best = tmp / "best.json"
    result = cli(
        [
            "tune",
            path,
            "--data",
            train,
            "--val",
            valid,
            "--trials",
            "3",
            "--coarse-epochs",
            "1",
            "--fine",
            "1",
            "--fine-epochs",
            "2",
            "--seed",
            "0",
            "--plot",
            tmp / "search.png",
            "-o",
            best,
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["command"] == "tune" and record["metric"] == "val_accuracy"
    assert record["storage"] == f"sqlite:///{tmp / 'best.study.db'}"  # beside the output
    phases = [(t["phase"], t["state"]) for t in record["trials"]]
    assert phases.count(("fine", "complete")) == 1
    assert sum(p == "coarse" for p, _ in phases) == 3
    coarse = [t for t in record["trials"] if t["phase"] == "coarse"]
    assert all(t["seconds"] > 0 and t["tap"] == "hidden2" for t in coarse)  # cost; the cached tap
    assert (tmp / "best.features.h5").exists()
    document = json.loads(best.read_text())
    assert document["finetune"] == record["best"]
    assert set(document["finetune"]) >= {"lr", "l2", "epochs", "early_stopping"}
    assert document["finetune"]["l2"] in (1e-4, 1e-5, 0.0)
    suggestion = record["lr_suggestions"]["adam"]
    assert suggestion / 10 <= document["finetune"]["lr"] <= suggestion * 10
    assert "trials of study 'reuse-tune'" in result.stderr and "best" in result.stderr
    png_ok(tmp / "search.png")
    # best.json drives finetune; a flag still wins over it.
    result = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--val",
            valid,
            "--config",
            best,
            "--lr",
            "0.001",
            "-o",
            tmp / "tuned.keras",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    tuned = json.loads(result.stdout)
    assert tuned["stages"][0]["lr"] == pytest.approx(0.001)
    assert tuned["stages"][0]["epochs"] <= document["finetune"]["epochs"]
    assert "lr" not in tuned["from_config"] and "l2" in tuned["from_config"]


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_OPTUNA, reason="needs optuna")
def test_best_json_of_a_search_with_image_shape_drives_finetune(tuning_task):
    """tune --augment ... --image-shape H,W,C wrote `"image_shape": "2,4,1"` into best.json,
    which `finetune --config` then refused ("`image_shape` must be tuple")."""
    tmp, path, train, valid = tuning_task
    best = tmp / "best_shape.json"
    common = [path, "--data", train, "--val", valid]
    result = cli(
        ["tune", *common, "--trials", "1", "--coarse-epochs", "1", "--fine", "1"]
        + ["--fine-epochs", "1", "--augment", "shift", "--image-shape", "2,4,1", "--seed", "0"]
        + ["--study-name", "shape", "-o", best]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(best.read_text())["finetune"]["image_shape"] == [2, 4, 1]
    tuned = cli(["finetune", *common, "--config", best, "-o", tmp / "shape.keras"])
    assert tuned.exit_code == 0, tuned.stderr
