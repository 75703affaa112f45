"""`freeze | cache-features | finetune --augment SPEC`: the piped record carries a cache without
augmented views, and finetune refuses it. The one line offered only a rebuild; it now also
says how to train without the cache (--no-cache), which then works."""

from __future__ import annotations

import json

import pytest

from tests.helpers import classification_data, cli, frozen_mlp, save_npz


@pytest.mark.slow  # real processes, 6-8 s: in `make test-slow`
def test_a_cache_without_views_names_no_cache_and_no_cache_works(tmp_path):
    frozen_mlp(upto=2).save(tmp_path / "frozen.keras")
    save_npz(tmp_path / "train.npz", *classification_data(40, n_classes=3))
    made = cli(
        [
            "cache-features",
            tmp_path / "frozen.keras",
            "--data",
            tmp_path / "train.npz",
            "-o",
            tmp_path / "feats.h5",
        ]
    )
    assert made.exit_code == 0, made.stderr
    record = made.stdout.strip().splitlines()[-1]

    run = ["finetune", "--data", tmp_path / "train.npz", "--augment", "noise:0.1"]
    run += ["--epochs", "1", "--seed", "0", "-o", tmp_path / "t.keras"]
    refused = cli(run, input=record + "\n")
    assert refused.exit_code == 1, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, refused.stderr
    assert "holds no augmented views" in lines[0]
    assert "--no-cache" in lines[0]
    assert not (tmp_path / "t.keras").exists()

    trained = cli([*run, "--no-cache"], input=record + "\n")
    assert trained.exit_code == 0, trained.stderr
    assert json.loads(trained.stdout.strip().splitlines()[-1])["used_cache"] is False
    assert (tmp_path / "t.keras").exists()
