"""`cache-features --engine ray`: shards on Ray Data actors (embedded local Ray), joined into
one cache equal to the one-process cache row for row; --resume redoes only missing shards.
Skipped without the `ray` extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, assert_features_equal

pytest.importorskip("ray.data")


def _reuse(cwd, args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "reuse", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ray_cache_equals_one_process_cache_and_resume_redoes_missing_shards(frozen_task, tmp_path):
    import h5py

    path, train, _ = frozen_task
    common = [path, "--data", train, "--at", "hidden1,hidden3", "--batch-size", "16"]
    one = _reuse(tmp_path, ["cache-features", *common, "-o", "one.h5"])
    assert one.returncode == 0, one.stderr
    args = ["cache-features", *common, "-o", "ray.h5", "--engine", "ray", "--workers", "2", "--shards", "3", "--threads", "1", "--json"]  # fmt: skip
    made = _reuse(tmp_path, args)
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout.splitlines()[-1])
    assert record["rows"] == 100 and len(record["parts"]) == 3
    # A pool of 2 actors; with shards this small the first may finish them all.
    assert "Ray actor(s)" in made.stderr and "Error" not in made.stderr

    def same():
        with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "ray.h5") as b:
            assert b["features/hidden3"].is_virtual
            for key in ("features/hidden1", "features/hidden3"):
                assert_features_equal(b[key][...], a[key][...])
            for key in ("labels", "indices"):
                np.testing.assert_array_equal(b[key][...], a[key][...])
            assert a.attrs["fingerprint"] == b.attrs["fingerprint"]

    same()
    (tmp_path / "ray.part-00001-of-00003.h5").unlink()
    again = _reuse(tmp_path, [*args, "--resume"])
    assert again.returncode == 0, again.stderr
    assert "kept 2 finished parts" in again.stderr
    same()
