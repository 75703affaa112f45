"""`reuse inspect` prints a model's `inputs:` and `outputs:` lines the same way whether it reads
the file directly (the TF-free fast path) or loads it with Keras (--full-load). A Sequential
model's input shape used to read `()` on the fast path: its InputLayer has no row.
"""

from __future__ import annotations

import json

from tests.helpers import ROOT, cli

BASE = ROOT / "models" / "digits_0to4.keras"  # a Sequential model with an InputLayer


def _io_lines(args: list) -> list[str]:
    result = cli(["inspect", BASE, *args])
    assert result.exit_code == 0, result.stderr
    text = result.stdout + result.stderr
    return [line.strip() for line in text.splitlines() if line.startswith(("inputs:", "outputs:"))]


def test_sequential_input_shape_on_the_fast_path():
    assert _io_lines([]) == ["inputs: pixels (None, 64)", "outputs: output (None, 5)"]


def test_fast_path_and_full_load_agree():
    assert _io_lines([]) == _io_lines(["--full-load"])


def test_sequential_input_shape_in_json():
    result = cli(["inspect", BASE, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    text = json.dumps(json.loads(result.stdout))
    assert '"inputs": [{"name": "pixels", "shape": [null, 64]}]' in text
