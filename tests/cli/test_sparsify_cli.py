"""`reuse sparsify`: accuracy before and after, zeros shown by `reuse inspect --weights`, option
errors."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli


def test_sparsify_cli_reports_accuracy_and_inspect_shows_zeros(tuning_task):
    tmp, path, train, valid = tuning_task
    out = tmp / "sparse.keras"
    result = cli(["sparsify", path, "--sparsity", "0.9", "--data", valid, "-o", out, "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"] == str(out.resolve())
    assert record["sparsity"]["sparsity"] == pytest.approx(0.9, abs=0.02)
    assert {"accuracy_before", "accuracy", "loss_before", "loss"} <= set(record["metrics"])
    assert "accuracy" in result.stderr and "→" in result.stderr
    shown = cli(["inspect", out, "--weights", "--format", "csv"])
    assert shown.exit_code == 0, shown.stderr
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    kernels = [r for r in rows if r["weight"].endswith("/kernel")]
    assert kernels and all(float(r["zeros"]) >= 0.85 for r in kernels)  # the zeros column


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "exactly one of --threshold and --sparsity"),
        (["--threshold", "0.1", "--sparsity", "0.5"], "exactly one of --threshold and --sparsity"),
        (["--sparsity", "1.5"], "Received: sparsity=1.5"),
        (["--sparsity", "0.5", "--scope", "model"], "Received: scope='model'"),
        (["--sparsity", "0.5", "--layers", "hidden["], "not a valid regular expression"),
    ],
)
def test_sparsify_bad_options(tuning_task, args, expected):
    tmp, path, _, _ = tuning_task
    result = cli(["sparsify", path, "-o", tmp / "never.keras", *args])
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert not (tmp / "never.keras").exists()
