"""The command a stale-cache error offers rebuilds a cache that the refused run accepts: it
carries the data selection (--classes, --per-class, --seed, ...). It used to leave it out, so
running it rebuilt the same mismatched cache."""

from __future__ import annotations

import shlex

from tests.helpers import classification_data, cli, mlp, save_npz


def _error_line(result) -> str:
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_rebuild_hint_carries_the_selection_and_works(tmp_path):
    model = mlp(hidden=3, seed=1)
    for name in ("hidden1", "hidden2"):
        model.get_layer(name).trainable = False
    model.save(tmp_path / "base.keras")
    save_npz(tmp_path / "train.npz", *classification_data(90, n_classes=3))
    cache = tmp_path / "feats.h5"
    made = cli(
        ["cache-features", tmp_path / "base.keras", "--data", tmp_path / "train.npz", "-o", cache]
    )
    assert made.exit_code == 0, made.stderr

    selected = ["--classes", "1-2", "--per-class", "20", "--seed", "3"]
    run = ["finetune", tmp_path / "base.keras", "--data", tmp_path / "train.npz", *selected]
    run += ["--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    assert "made from other data" in line
    hint = line.split("rebuild it: ")[1]
    assert "--classes 1,2 --per-class 20 --seed 3" in hint, hint

    argv = shlex.split(hint)
    assert argv[:2] == ["reuse", "cache-features"]
    rebuilt = cli(argv[1:])
    assert rebuilt.exit_code == 0, rebuilt.stderr
    trained = cli(run)
    assert trained.exit_code == 0, trained.stderr
    assert '"used_cache": true' in trained.stdout
