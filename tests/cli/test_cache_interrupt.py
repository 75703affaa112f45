"""Ctrl-C in the middle of `cache-features`: the rows written so far stay in `.NAME.part.h5`
for --resume. The CLI printed a Warning saying so, then `Error: interrupted — nothing was
written; run the command again`, which contradicts it. Now it is one line, exit code 130,
that says what was kept and how to continue; --resume then finishes the cache."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.helpers import (
    classification_data,
    cli,
    frozen_mlp,
    save_npz,
    subprocess_env,
    wait_for_part_rows,
)


@pytest.mark.slow  # real processes, 6-8 s: in `make test-slow`
def test_ctrl_c_names_the_kept_rows_and_resume_finishes(tmp_path):
    from reuse.cache import part_path

    frozen_mlp(upto=2).save(tmp_path / "frozen.keras")
    data = save_npz(tmp_path / "d.npz", *classification_data(2000))
    out = tmp_path / "feats.h5"
    part = part_path(out)
    args = ["cache-features", str(tmp_path / "frozen.keras"), "--data", str(data), "-o", str(out)]
    args += ["--batch-size", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reuse", *args],
        env=subprocess_env(REUSE_TEST_BATCH_DELAY="1.5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = wait_for_part_rows(proc, part, at_least=20)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert done > 0, stderr[-2000:]
    assert proc.returncode == 130, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("\r")]
    errors = [line for line in lines if line.startswith("Error:")]
    assert errors == [
        f"Error: interrupted; the rows written so far are kept in {part} — "
        "run the same command with --resume to continue"
    ], stderr[-2000:]
    assert not any(line.startswith("Warning:") for line in lines), stderr[-2000:]
    assert "nothing was written" not in stderr
    assert stdout == ""
    assert part.exists() and not out.exists()

    resumed = cli([*args, "--resume"])
    assert resumed.exit_code == 0, resumed.stderr
    assert out.exists() and not part.exists()
