"""Optional dependencies: which extra of `keras-reuse` brings each, and checking for one before
any work starts.

A command that will need an optional package (`lr-find --plot` and `plot` need matplotlib,
`--tensorboard` needs tensorboard) calls `require` first, so a missing package is named, with
the `pip install` line, before the data is read or the sweep runs — not after, losing the
work. `require` only looks the package up (`importlib.util.find_spec`); it imports nothing.

Example:
    >>> require("matplotlib", "--plot")
    UsageError: --plot needs matplotlib, which is not installed — install it with:
    pip install 'keras-reuse[plot]'
"""

from __future__ import annotations

import importlib.util

from reuse.core.errors import UsageError

PACKAGE = "keras-reuse"

# Optional extras of pyproject.toml, by the top-level module that needs them.
EXTRAS = {
    "matplotlib": "plot",
    "torch": "torch",
    "safetensors": "safetensors",
    "sklearn": "demo",
    "tensorboard": "tensorboard",
    "optuna": "tune",
    "ray": "ray",
    "onnx": "onnx",
}


def install_line(module: str) -> str:
    """`pip install 'keras-reuse[<extra>]'` for a module of `EXTRAS` (else `pip install <module>`)."""
    extra = EXTRAS.get(module)
    return f"pip install '{PACKAGE}[{extra}]'" if extra else f"pip install {module}"


def require(module: str, needed_by: str) -> None:
    """Refuse to start when `module` (a key of `EXTRAS`) is not installed.

    Args:
        module: the top-level module, e.g. "matplotlib".
        needed_by: what needs it, for the message, e.g. "--plot" or "reuse plot".

    Raises:
        UsageError: the module cannot be found (exit code 2); the hint is the install line.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(
            f"{needed_by} needs {module}, which is not installed",
            f"install it with: {install_line(module)}",
        )
