"""`cache-features --engine ray --ray-address HOST:PORT` against a real Ray cluster started
with `ray start --head`, with token authentication, inside a network namespace that holds
only loopback (`unshare -n`): the cache equals the one-process cache row for row; without
RAY_AUTH_MODE=token the command stops with one error line naming it.

Skipped without the `ray` extra or without `unshare -n` (root)."""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_features_equal, subprocess_env

pytest.importorskip("ray.data")

PORT = 6399


def _unshare_works() -> bool:
    try:
        run = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def test_cache_on_a_started_ray_cluster_equals_one_process(frozen_task, tmp_path):
    import h5py

    if not _unshare_works():
        pytest.skip("needs `unshare -n` (root): a network namespace holding only loopback")
    path, train, _ = frozen_task
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip("no `ray` command beside this Python")
    common = [path, "--data", train, "--at", "hidden1,hidden3", "--batch-size", "16"]
    reuse = [sys.executable, "-m", "reuse", "cache-features", *map(str, common)]
    one = subprocess.run(
        [*reuse, "-o", "one.h5"], cwd=tmp_path, env=subprocess_env(), capture_output=True
    )
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    on_ray = [*reuse, "--engine", "ray", "--workers", "2", "--shards", "3", "--threads", "1",
              "--ray-address", f"127.0.0.1:{PORT}", "--json"]  # fmt: skip
    head = [str(ray), "start", "--head", f"--port={PORT}", "--num-cpus=2",
            "--include-dashboard=false", "--node-ip-address=127.0.0.1",
            "--disable-usage-stats"]  # fmt: skip
    token = secrets.token_hex(32)
    script = f"""
ip link set lo up 2>/dev/null || true
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token RAY_AUTH_TOKEN={token}
{shlex.join(head)} > head.log 2>&1 || {{ echo HEAD FAILED; cat head.log; exit 3; }}
{shlex.join([*on_ray, "-o", "ray.h5"])} > ray.json 2> ray.err
echo "joined=$?"
env -u RAY_AUTH_MODE {shlex.join([*on_ray, "-o", "refused.h5"])} > refused.json 2> refused.err
echo "refused=$?"
{shlex.join([str(ray), "stop", "--force"])} > /dev/null 2>&1
"""
    env = subprocess_env(HOME=str(tmp_path))  # no ~/.ray/auth_token from another run
    run = subprocess.run(
        ["unshare", "-n", "bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "HEAD FAILED" not in run.stdout, run.stdout[-3000:]
    assert "joined=0" in run.stdout, (tmp_path / "ray.err").read_text()[-3000:]
    record = json.loads((tmp_path / "ray.json").read_text().splitlines()[-1])
    assert record["rows"] == 100 and len(record["parts"]) == 3
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "ray.h5") as b:
        for key in ("features/hidden1", "features/hidden3"):
            assert_features_equal(b[key][...], a[key][...])
        for key in ("labels", "indices"):
            np.testing.assert_array_equal(b[key][...], a[key][...])
        assert a.attrs["fingerprint"] == b.attrs["fingerprint"]
    # Without RAY_AUTH_MODE=token Ray does not send the token to an explicit address.
    assert "refused=1" in run.stdout, run.stdout
    errors = [
        line
        for line in (tmp_path / "refused.err").read_text().splitlines()
        if line.startswith("Error:")
    ]
    assert errors == [errors[0]] and f"cannot join the Ray cluster at 127.0.0.1:{PORT}" in errors[0]
    assert (
        "RAY_AUTH_MODE=token" in errors[0]
        and "Traceback" not in (tmp_path / "refused.err").read_text()
    )
    assert not (tmp_path / "refused.h5").exists()
