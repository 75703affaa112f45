"""`--except-top N` with N larger than the model's layer count selected layers counted from
the top (a negative slice stop: N = layers + 2 froze all but the top two) instead of none.
Now every N >= the layer count selects nothing and is refused like N = the layer count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli

DIGITS = Path(__file__).resolve().parents[2] / "models" / "digits_0to4.keras"  # 5 layers


@pytest.mark.parametrize("n", [5, 6, 7, 9])
def test_except_top_beyond_the_layers_selects_nothing(tmp_path, n):
    out = tmp_path / "f.keras"
    result = cli(["freeze", DIGITS, "--except-top", str(n), "-o", out])
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: --except-top {n} selects no layer (the model has 5 layers, numbered 0 to 4)"
        " — run `reuse inspect MODEL` to see the layers and their numbers"
    ]
    assert not out.exists()


def test_except_top_within_the_layers(tmp_path):
    result = cli(["freeze", DIGITS, "--except-top", "4", "-o", tmp_path / "f.keras", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"frozen": ["hidden1"]' in result.stdout


def test_a_negative_except_top_says_what_to_do(tmp_path):
    result = cli(["freeze", DIGITS, "--except-top", "-1", "-o", tmp_path / "f.keras"])
    assert result.exit_code == 2
    message, sep, hint = result.stderr.strip().partition(" — ")
    assert message == "Error: `--except-top` must be an integer >= 0. Received: --except-top=-1"
    assert "--except-top 1" in hint
