"""`a | reuse b` where `a` failed: `b` reads an empty stdin. Its one line says so (the command
before it printed no record, its error is above) instead of only "no model given — pipe the
record of another reuse command into this one", which is what the user just did."""

from __future__ import annotations

import pytest

from tests.helpers import cli


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--data", "test.npz"],
        ["cache-features", "--data", "train.npz"],
        ["finetune", "-", "--data", "train.npz"],
        ["inspect"],
    ],
    ids=lambda a: a[0],
)
def test_an_empty_pipe_names_the_failed_command_before(args, tmp_path):
    result = cli(args, input="")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: no model given, and stdin is empty")
    assert "the command before this one printed no record" in lines[0]
    assert lines[0].count(" — ") == 1
    assert lines[0].endswith("— fix that command, or pass a model path")
    assert result.stdout == ""
