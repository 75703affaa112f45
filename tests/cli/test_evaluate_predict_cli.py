"""`reuse evaluate` and `reuse predict` on a model that `reuse finetune` wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli


@pytest.mark.slow
def test_evaluate_and_predict(finetune_task, tmp_path):
    path, train, valid = finetune_task
    out = tmp_path / "tuned.keras"
    assert (
        cli(["finetune", path, "--data", train, "-o", out, "--epochs", "2", "--json"]).exit_code
        == 0
    )
    ev = cli(["evaluate", out, "--data", valid, "--json"])
    assert ev.exit_code == 0, ev.stderr
    rec = json.loads(ev.stdout)
    assert 0.0 <= rec["metrics"]["accuracy"] <= 1.0 and rec["metrics"]["rows"] == 30
    assert sum(c["support"] for c in rec["per_class"]) == 30
    preds = tmp_path / "p.npy"
    pr = cli(["predict", out, "--data", valid, "-o", preds, "--json"])
    assert pr.exit_code == 0, pr.stderr
    p = np.load(preds)
    assert p.shape == (30, 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    csv_out = tmp_path / "p.csv"
    assert cli(["predict", out, "--data", valid, "-o", csv_out, "--json"]).exit_code == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("row,p0,p1,p2,class") and len(lines) == 31


def test_evaluate_reports_original_labels_after_classes(finetune_task, tmp_path):
    path, train, valid = finetune_task
    out = tmp_path / "tuned.keras"
    assert (
        cli(["finetune", path, "--data", train, "-o", out, "--epochs", "1", "--json"]).exit_code
        == 0
    )
    ev = cli(["evaluate", out, "--data", valid, "--classes", "1-2", "--json"])
    assert ev.exit_code == 0, ev.stderr
    rec = json.loads(ev.stdout)
    assert [row["label"] for row in rec["per_class"]][:2] == [1, 2]
    assert "stages" not in rec
