"""A model output path that cannot be saved (`-o x.npz`) is refused before any work: before the
data is read, TensorFlow starts, or a model trains (finetune and pretrain used to train to the
end and only then refuse the name). One `Error:` line, exit 1, nothing written.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import ROOT, cli_fresh_process

BASE = ROOT / "models" / "digits_0to4.keras"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """train.npz (64 features, 5 classes) and a stand-in adapters file."""
    folder = tmp_path_factory.mktemp("suffix_first")
    rng = np.random.default_rng(0)
    np.savez(folder / "train.npz", x=rng.random((40, 64), "float32"), y=np.arange(40) % 5)
    np.savez(folder / "run.adapters.npz", a=np.zeros(1))
    return folder


def _refused_before_tensorflow(cases, tmp_path, *needles):
    results, tf_loaded = cli_fresh_process(cases)
    for args, (code, output) in zip(cases, results, strict=True):
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert code == 1, (args, output)
        assert len(errors) == 1, (args, output)
        assert all(needle in errors[0] for needle in needles), (args, errors[0])
        assert "Traceback" not in output
    assert not tf_loaded, "a command started TensorFlow before refusing its output name"
    assert list(tmp_path.iterdir()) == []


def test_model_outputs_with_a_wrong_suffix_are_refused_before_tensorflow(work, tmp_path):
    data = work / "train.npz"
    cases = [
        ["finetune", BASE, "--data", data, "--epochs", "1", "-o", tmp_path / "t.npz"],
        ["finetune", BASE, "--data", data, "--lora", "2", "-o", tmp_path / "t.npz"],
        ["sparsify", BASE, "--sparsity", "0.5", "-o", tmp_path / "s.npz"],
        ["quantize", BASE, "-o", tmp_path / "q.npz"],
        ["lora", "merge", BASE, work / "run.adapters.npz", "-o", tmp_path / "m.npz"],
        ["import-weights", BASE, "--into", BASE, "-o", tmp_path / "c.npz"],
        ["pretrain", "autoencoder", "--data", data, "--layers", "8", "-o", tmp_path / "a.npz"],
    ]
    _refused_before_tensorflow(
        cases, tmp_path, "cannot save a model as", "use a .keras (or .h5) output path"
    )


def test_predictions_with_a_wrong_suffix_are_refused_before_tensorflow(work, tmp_path):
    """predict loaded the model and predicted every row before refusing -o preds.txt."""
    cases = [["predict", BASE, "--data", work / "train.npz", "-o", tmp_path / "preds.txt"]]
    _refused_before_tensorflow(
        cases,
        tmp_path,
        "cannot write predictions as 'preds.txt'",
        "use -o preds.npy or -o preds.csv",
    )
