"""Flags that contradict each other are a usage error (exit 2, one `Error:` line), answered
before TensorFlow starts and before anything is written; they used to be accepted silently.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import ROOT, cli_fresh_process

BASE = ROOT / "models" / "digits_0to4.keras"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """train.npz and valid.npz: 64 features, 5 classes."""
    folder = tmp_path_factory.mktemp("contradictory")
    rng = np.random.default_rng(0)
    for name in ("train", "valid"):
        np.savez(folder / f"{name}.npz", x=rng.random((40, 64), "float32"), y=np.arange(40) % 5)
    return folder


def test_val_and_val_split_together_are_refused(work, tmp_path):
    both = ["--data", work / "train.npz", "--val", work / "valid.npz", "--val-split", "0.2"]
    cases = [
        ["finetune", BASE, *both, "-o", tmp_path / "t.keras"],
        ["tune", BASE, *both, "-o", tmp_path / "best.json"],
        ["pretrain", "autoencoder", *both, "-o", tmp_path / "a.keras"],
        ["pretrain", "pairs", *both, "-o", tmp_path / "p.keras"],
    ]
    results, tf_loaded = cli_fresh_process(cases)
    for args, (code, output) in zip(cases, results, strict=True):
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert code == 2, (args, output)
        assert len(errors) == 1, (args, output)
        assert "--val and --val-split cannot be used together" in errors[0]
        assert "drop --val-split" in errors[0]
        assert "Traceback" not in output
    assert not tf_loaded
    assert list(tmp_path.iterdir()) == []
