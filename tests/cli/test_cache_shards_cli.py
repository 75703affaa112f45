"""`reuse cache-features --shard I/N`, `--merge PARTS... -o`, and `--engine ray` without Ray."""

from __future__ import annotations

import json
import sys

import pytest

from tests.helpers import assert_features_equal, cli


@pytest.mark.slow
def test_shards_then_merge_then_finetune_from_the_joined_cache(frozen_task, tmp_path):
    path, train, _ = frozen_task
    out = tmp_path / "feats.h5"
    for i in range(2):
        made = cli(
            [
                "cache-features",
                path,
                "--data",
                train,
                "--at",
                "hidden2",
                "-o",
                out,
                "--shard",
                f"{i}/2",
                "--json",
            ]
        )
        assert made.exit_code == 0, made.stderr
        assert f'"shard": "{i}/2"' in made.stdout
    assert not out.exists()
    parts = sorted(tmp_path.glob("feats.part-*-of-00002.h5"))
    assert len(parts) == 2
    joined = cli(["cache-features", "--merge", *parts, "-o", out, "--json"])
    assert joined.exit_code == 0, joined.stderr
    assert "Joined 2 parts (100 rows)" in joined.stderr
    one = cli(
        ["cache-features", path, "--data", train, "--at", "hidden2", "-o", tmp_path / "one.h5"]
    )
    assert one.exit_code == 0, one.stderr
    import h5py

    with h5py.File(out) as a, h5py.File(tmp_path / "one.h5") as b:
        assert_features_equal(a["features/hidden2"][...], b["features/hidden2"][...])
    tuned = cli(
        [
            "finetune",
            path,
            "--data",
            train,
            "--features",
            out,
            "--epochs",
            "1",
            "-o",
            tmp_path / "t.keras",
        ]
    )
    assert tuned.exit_code == 0, tuned.stderr
    assert json.loads(tuned.stdout.splitlines()[-1])["used_cache"] is True


def test_merge_with_a_shard_missing_and_a_bad_spec_are_one_error_line(frozen_task, tmp_path):
    path, train, _ = frozen_task
    out = tmp_path / "feats.h5"
    made = cli(["cache-features", path, "--data", train, "-o", out, "--shard", "0/2"])
    assert made.exit_code == 0, made.stderr
    merged = cli(
        ["cache-features", "--merge", tmp_path / "feats.part-00000-of-00002.h5", "-o", out]
    )
    assert merged.exit_code != 0
    assert "Error: shard(s) 1/2 missing" in merged.stderr
    bad = cli(["cache-features", path, "--data", train, "--shard", "2/2"])
    assert bad.exit_code != 0 and "--shard takes I/N" in bad.stderr


def test_engine_ray_without_ray_says_how_to_install_it(frozen_task, monkeypatch):
    path, train, _ = frozen_task
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = cli(["cache-features", path, "--data", train, "--engine", "ray"])
    assert result.exit_code != 0
    assert "--engine ray needs Ray" in result.stderr
    assert "pip install 'keras-reuse[ray]'" in result.stderr
