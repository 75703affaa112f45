"""A `.weights.h5` file given where a model is needed (evaluate, freeze, finetune): the hint
said "pass the architecture with --arch MODEL.keras", an option those commands do not have
(`Error: No such option: --arch`). It now names the command that makes a model of it, and
that command works."""

from __future__ import annotations

import shlex

import pytest

from tests.helpers import classification_data, cli, mlp, save_npz


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("w")
    model = mlp(hidden=2)
    model.save(folder / "arch.keras")
    model.save_weights(folder / "m.weights.h5")
    save_npz(folder / "d.npz", *classification_data(30, n_classes=3))
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "{w}", "--data", "{d}"],
        ["freeze", "{w}", "--upto", "hidden1", "-o", "{out}"],
        ["finetune", "{w}", "--data", "{d}", "--epochs", "1", "-o", "{out}"],
    ],
    ids=lambda a: a[0],
)
def test_the_hint_names_a_command_that_exists(weights, tmp_path, args):
    w = weights / "m.weights.h5"
    filled = [a.format(w=w, d=weights / "d.npz", out=tmp_path / "o.keras") for a in args]
    result = cli(filled)
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "holds weights only" in lines[0]
    assert "--arch MODEL.keras" not in lines[0]
    command = lines[0].split("make a model of it first: ")[1].split(" (ARCH")[0]
    argv = shlex.split(
        command.replace("ARCH.keras", str(weights / "arch.keras")).replace(
            "MODEL.keras", str(tmp_path / "model.keras")
        )
    )
    assert argv[:2] == ["reuse", "import-weights"]
    made = cli(argv[1:])
    assert made.exit_code == 0, made.stderr
    evaluated = cli(["evaluate", tmp_path / "model.keras", "--data", weights / "d.npz"])
    assert evaluated.exit_code == 0, evaluated.stderr
