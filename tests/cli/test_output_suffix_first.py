"""A model output path that cannot be saved (`-o x.npz`) is refused before any work: before the
data is read, TensorFlow starts, or a model trains (finetune and pretrain used to train to the
end and only then refuse the name). One `Error:` line, exit 1, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

BASE = ROOT / "models" / "digits_0to4.keras"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """train.npz (64 features, 5 classes) and a stand-in adapters file."""
    folder = tmp_path_factory.mktemp("suffix_first")
    rng = np.random.default_rng(0)
    np.savez(folder / "train.npz", x=rng.random((40, 64), "float32"), y=np.arange(40) % 5)
    np.savez(folder / "run.adapters.npz", a=np.zeros(1))
    return folder


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
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from reuse.cli import app, normalize_argv\n"
        "out = []\n"
        "for a in json.loads(sys.argv[1]):\n"
        "    r = CliRunner().invoke(app, normalize_argv(a))\n"
        "    out.append([r.exit_code, r.output])\n"
        "print(json.dumps([out, 'tensorflow' in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([[str(a) for a in c] for c in cases])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    results, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for args, (code, output) in zip(cases, results, strict=True):
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert code == 1, (args, output)
        assert len(errors) == 1 and "cannot save a model as" in errors[0], (args, output)
        assert "use a .keras (or .h5) output path" in errors[0]
        assert "Traceback" not in output
    assert not tf_loaded, "a command started TensorFlow before refusing its output name"
    assert list(tmp_path.iterdir()) == []


def test_predictions_with_a_wrong_suffix_are_refused_before_tensorflow(work, tmp_path):
    """predict loaded the model and predicted every row before refusing -o preds.txt."""
    args = ["predict", BASE, "--data", work / "train.npz", "-o", tmp_path / "preds.txt"]
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from reuse.cli import app, normalize_argv\n"
        "r = CliRunner().invoke(app, normalize_argv(json.loads(sys.argv[1])))\n"
        "print(json.dumps([r.exit_code, r.output, 'tensorflow' in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([str(a) for a in args])],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    code, output, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1, output
    assert "cannot write predictions as 'preds.txt'" in errors[0]
    assert "use -o preds.npy or -o preds.csv" in errors[0]
    assert not tf_loaded
    assert list(tmp_path.iterdir()) == []
