"""Usage errors that Click finds while parsing (unknown option or command, an option missing
its value, a value of the wrong type, an extra argument) print one line like every other
`reuse` error — `Error: <what> — see `reuse COMMAND --help`` — with exit code 2, and no
"Usage:" or "Try ... for help." lines. No TensorFlow is needed: parsing fails first."""

from __future__ import annotations

import pytest

from tests.helpers import cli

CASES = [
    (["freeze", "m.keras", "--uptoo", "h1"], "No such option: --uptoo", "reuse freeze"),
    (["freeze", "m.keras", "--upto"], "Option '--upto' requires an argument", "reuse freeze"),
    (["finetune", "m.keras", "--epochs", "abc"], "Invalid value for '--epochs'", "reuse finetune"),
    (["inspect", "m.keras", "--format", "yaml"], "'yaml' is not one of", "reuse inspect"),
    (
        ["lr-find", "m.keras", "--data", "d.npz", "extra"],
        "unexpected extra argument",
        "reuse lr-find",
    ),
    (["lora", "merge", "base.keras"], "Missing argument 'ADAPTERS'", "reuse lora merge"),
    (["pretrain", "nosuch"], "No such command 'nosuch'", "reuse pretrain"),
    (["nosuch"], "No such command 'nosuch'", "reuse"),
    (["--bogus"], "No such option: --bogus", "reuse"),
]


@pytest.mark.parametrize(("args", "what", "command"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_click_usage_error_is_one_line(args, what, command):
    result = cli(args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert what in lines[0]
    assert lines[0].endswith(f" — see `{command} --help`")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [[], ["pretrain"], ["lora"]])
def test_a_bare_group_still_prints_its_help(args):
    result = cli(args)
    assert result.exit_code == 2
    assert "Usage: reuse" in result.stderr + result.stdout
    assert "Error:" not in result.stderr + result.stdout
