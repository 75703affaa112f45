"""Which Keras backend a command will run on, read without importing Keras.

Keras picks its backend from `KERAS_BACKEND`, else from `keras.json` in `KERAS_HOME` (default
`~/.keras`), else TensorFlow. Most of `reuse` trains with TensorFlow itself (`tf.function`
loops, `tf.data`, SavedModel), so those commands refuse any other backend at start, before
loading anything; commands that only read, edit or run `.keras` files work on every backend
(see docs/modern.md, "Backends").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reuse.core.errors import UsageError

SUPPORTED = "tensorflow"
# The commands that work on every Keras backend (tested with torch in tests/cli/test_backends.py).
ANY_BACKEND_COMMANDS = ("inspect", "freeze", "unfreeze", "evaluate", "predict", "plot")


def keras_backend() -> str:
    """The backend Keras will use: `KERAS_BACKEND`, else keras.json's "backend", else tensorflow."""
    name = os.environ.get("KERAS_BACKEND", "").strip()
    if name:
        return name.lower()
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        config = json.loads((home / "keras.json").read_text())
    except (OSError, ValueError):
        return SUPPORTED
    return (
        str(config.get("backend") or SUPPORTED).lower() if isinstance(config, dict) else SUPPORTED
    )


def require_tensorflow(command: str) -> None:
    """Refuse to start `command` unless Keras runs on TensorFlow.

    Raises:
        UsageError: another backend is selected (the message names it and the supported one).
    """
    backend = keras_backend()
    if backend == SUPPORTED:
        return
    raise UsageError(
        f"reuse {command} needs the {SUPPORTED} Keras backend; KERAS_BACKEND is {backend}",
        f"run it with KERAS_BACKEND={SUPPORTED} (on {backend}, only "
        f"{', '.join(ANY_BACKEND_COMMANDS)} work)",
    )
