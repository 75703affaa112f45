"""Every command has help text with an example, answers --help without TensorFlow, and is in the README."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, cli


def _commands():
    from reuse.cli import app

    return [c.name for c in app.registered_commands]


@pytest.mark.parametrize("name", _commands())
def test_command_has_help_and_example(name):
    result = cli([name, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert re.search(
        rf"^\s+reuse {re.escape(name)}\b|\|\s*reuse {re.escape(name)}\b", result.stdout, re.M
    ), result.stdout


@pytest.mark.parametrize("name", _commands())
def test_command_is_documented_in_readme(name):
    readme = (ROOT / "README.md").read_text()
    assert f"reuse {name}" in readme, f"README.md has no example of `reuse {name}`"


def test_readme_opens_with_the_two_commands():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()[:12]]
    assert any(line.startswith("make demo") for line in lines)
    assert any(line.startswith("make test") for line in lines)


def test_every_help_answers_without_tensorflow(tmp_path):
    from tests.helpers import shell

    for name in _commands():
        result = shell(f"python -X importtime -m reuse {name} --help", tmp_path)
        assert result.returncode == 0, result.stderr
        imported = {
            line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line
        }
        heavy = imported & {"tensorflow", "keras", "torch", "matplotlib", "h5py"}
        assert not heavy, f"`reuse {name} --help` imports {heavy}"
