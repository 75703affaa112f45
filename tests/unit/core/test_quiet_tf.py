"""TensorFlow's start-up log lines are dropped by level; everything else on stderr is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reuse.core import quiet_tf
from tests.helpers import ROOT

ONEDNN = (
    "I0000 00:00:1796063318.341105   19973 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.\n"
)
PREAMBLE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
)
CPU_GUARD = (
    "I0000 00:00:1796063318.601198   19973 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
)
WARN = "W0000 00:00:1796063318.7   19973 cuda_dnn.cc:8] a warning\n"
ERROR = "E0000 00:00:1796063318.7   19973 cuda_dnn.cc:8] an error\n"
PYTHON = "/x/y.py:3: UserWarning: something Python said\n  warnings.warn(...)\n"


def test_level_two_drops_info_and_warning_keeps_errors_and_python_output():
    text = PREAMBLE + ONEDNN + CPU_GUARD + WARN + PYTHON + ERROR + PREAMBLE + ONEDNN
    assert quiet_tf.filter_log(text, 2) == PYTHON + ERROR


def test_level_zero_keeps_everything_and_level_one_drops_info():
    text = PREAMBLE + ONEDNN + CPU_GUARD + WARN
    assert quiet_tf.filter_log(text, 0) == text
    assert quiet_tf.filter_log(text, 1) == WARN


def test_min_log_level_reads_the_environment(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    assert quiet_tf.min_log_level() == 3
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "x")
    assert quiet_tf.min_log_level() == 0


def test_captured_descriptor_is_filtered_and_written_back(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_tf.quiet_stderr_fd():
        os.write(2, (PREAMBLE + ONEDNN + "kept line\n").encode())
    assert capfd.readouterr().err == "kept line\n"


def test_import_reuse_installs_the_finder_once():
    import reuse  # noqa: F401

    quiet_tf.install()
    finders = [f for f in sys.meta_path if isinstance(f, quiet_tf._QuietTensorFlowFinder)]
    assert len(finders) <= 1  # none once TensorFlow is imported


@pytest.mark.slow
def test_a_typo_after_tensorflow_starts_is_one_line_on_stderr(tmp_path):
    """`reuse freeze` loads the model (TensorFlow starts), then refuses a misspelt layer name."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "reuse", "freeze", str(ROOT / "models" / "digits_0to4.keras")]
        + ["--upto", "hiden2", "-o", str(tmp_path / "x.keras"), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode != 0
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("Error: no layer named 'hiden2'"), result.stderr
    assert len(lines) <= 2, result.stderr  # the error and at most its hint
