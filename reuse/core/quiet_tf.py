"""Import TensorFlow without its start-up chatter on stderr, and without changing what it computes.

TensorFlow 2.21 logs through absl before absl is initialized, so `TF_CPP_MIN_LOG_LEVEL` does
not reach its first lines: every process that imports it printed

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...

twice, even with `--quiet`. `TF_ENABLE_ONEDNN_OPTS=0` would hide the oneDNN line only by turning
the oneDNN kernels off (other speed, other round-off), so instead the import itself runs with
file descriptor 2 redirected to a temporary file; afterwards every line is written back to
stderr except the absl/TensorFlow log lines below the level `TF_CPP_MIN_LOG_LEVEL` asks for
(`reuse` sets it to 2 unless it is set: errors only). Python-level output (warnings, a
traceback) is written back unchanged.

`install()` (called by `import reuse`) puts a one-shot finder first on `sys.meta_path`, so the
first `import tensorflow` in the process, whoever triggers it (`import keras` does), is the
quiet one: `reuse` code keeps writing plain `import tensorflow as tf` / `import keras` inside
functions, and no code path can import TensorFlow loudly. No TensorFlow is imported here.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator

#: absl's line format: severity letter, MMDD, time, thread id, file:line] message.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
#: The second line of TensorFlow's cpu_feature_guard message (its first line is an absl line).
_CONTINUATIONS = ("To enable the following instructions:",)
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def min_log_level() -> int:
    """The level below which absl/TensorFlow lines are dropped: `TF_CPP_MIN_LOG_LEVEL` (0-3).

    0 keeps everything, 1 drops INFO, 2 (reuse's default) drops INFO and WARNING, 3 keeps only
    FATAL. A value that is not a number counts as 0, as in TensorFlow.
    """
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_log(text: str, level: int) -> str:
    """`text` without the absl/TensorFlow log lines of severity below `level` (see min_log_level).

    Lines that are not absl lines (Python warnings, tracebacks, anything else) are kept, so a
    real failure during the import still shows.
    """
    kept = []
    dropping = False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            dropping = _SEVERITY[match.group(1)] < level
        elif line.startswith(_ABSL_PREAMBLE):
            dropping = level >= 1
        elif not (dropping and line.startswith(_CONTINUATIONS)):
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def quiet_stderr_fd() -> Iterator[None]:
    """Run the body with file descriptor 2 captured, then write it back through `filter_log`.

    Works at the descriptor level, so it catches what C++ libraries print. Without a usable
    descriptor 2 (closed, or no real file behind sys.stderr) the body runs unchanged.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = filter_log(capture.read().decode("utf-8", "replace"), min_log_level())
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


class _QuietLoader:
    """Wraps TensorFlow's own loader: runs its `exec_module` inside `quiet_stderr_fd`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with quiet_stderr_fd():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders would, with its loader wrapped; used once."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Make the process's first `import tensorflow` quiet (see the module docstring).

    Sets `TF_CPP_MIN_LOG_LEVEL=2` unless it is set. Does nothing more when TensorFlow is
    already imported or the finder is already installed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    if any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())
