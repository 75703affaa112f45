"""Every error line is `Error: <what> — <what to do>`. These option errors had no "what to do"
part (`Error: `--split` must be train or test. Received: split='validation'`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli

DIGITS = Path(__file__).resolve().parents[2] / "models" / "digits_0to4.keras"

CASES = [
    (
        ["evaluate", DIGITS, "--data", "d.npz", "--split", "validation"],
        "`--split` must be train or test",
        "--split train",
    ),
    (
        ["evaluate", DIGITS, "--data", "d.npz", "--per-class", "0"],
        "`--per-class` must be a positive integer",
        "--per-class 100",
    ),
    (
        ["predict", DIGITS, "--data", "d.npz", "--limit", "-5"],
        "`--limit` must be a positive integer",
        "--limit 100",
    ),
    (
        ["freeze", DIGITS, "--index", "::0", "-o", "{tmp}/f.keras"],
        "the step of `--index` must not be 0",
        "non-zero step",
    ),
]


@pytest.mark.parametrize(
    ("args", "what", "todo"), CASES, ids=[c[0][0] + " " + c[0][3] for c in CASES]
)
def test_the_error_line_says_what_to_do(tmp_path, args, what, todo):
    result = cli([str(a).format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    message, sep, hint = lines[0].partition(" — ")
    assert message.startswith("Error: ") and what in message
    assert sep and todo in hint
    assert not (tmp_path / "f.keras").exists()
