"""A text file named .npz or .npy (a CSV saved under the wrong name, say) is called what it is,
not "pickled Python objects": NumPy reads any file without a zip or NumPy signature as a pickle.
A real pickle is still refused as one.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.helpers import ROOT, cli

BASE = ROOT / "models" / "digits_0to4.keras"


def _error_line(result) -> str:
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("name", "content"),
    [("data.npz", b"a,b,label\n1,2,0\n"), ("hello.npy", b"hello\n")],
    ids=["csv-as-npz", "text-as-npy"],
)
def test_text_file_with_a_numpy_name(tmp_path, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    line = _error_line(cli(["evaluate", BASE, "--data", bad, "--json"]))
    assert "neither a zip archive nor a NumPy array file" in line, line
    assert "pickled" not in line, line
    assert "give a CSV file a .csv name" in line
    assert bad.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["objects.npy", "plain.npz"])
def test_real_pickles_are_still_named(tmp_path, name):
    bad = tmp_path / name
    if name.endswith(".npy"):
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        bad.write_bytes(pickle.dumps([1, 2]))
    line = _error_line(cli(["evaluate", BASE, "--data", bad, "--json"]))
    assert "pickled Python objects, which reuse never loads" in line, line


@pytest.mark.parametrize("command", ["import-weights", "inspect"])
def test_text_file_as_npz_weights(tmp_path, command):
    """import-weights and inspect read a .npz of weights: a text file there was the generic
    `ValueError: ... allow_pickle ... — rerun with REUSE_DEBUG=1` line."""
    bad = tmp_path / "weights.npz"
    bad.write_bytes(b"hello\n")
    args = [command, bad] + (
        ["--into", BASE, "-o", tmp_path / "c.keras"] if command != "inspect" else []
    )
    line = _error_line(cli(args))
    assert "cannot read" in line and "neither a zip archive nor a NumPy array file" in line, line
    assert "REUSE_DEBUG" not in line and "allow_pickle" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]


def test_pickle_as_npz_weights_is_named(tmp_path):
    bad = tmp_path / "weights.npz"
    bad.write_bytes(pickle.dumps({"w": [1.0]}))
    line = _error_line(cli(["import-weights", bad, "--into", BASE, "-o", tmp_path / "c.keras"]))
    assert "pickled Python objects, which reuse never loads" in line, line
    assert "allow_pickle" not in line
