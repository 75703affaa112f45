"""Default output names: one rule for every command.

The output of a command sits next to its input and is named `<input minus its format
suffix>.<role><suffix>`: `my.model.keras` becomes `my.model.tuned.keras` under finetune,
`my.model.frozen.keras` under freeze, `my.model.features.h5` under cache-features. Files that
belong to an output (its history, its report) are named from the output the same way:
`tuned.keras` -> `tuned.history.csv`, `tuned.report.json`.
"""

from __future__ import annotations

import os
from pathlib import Path

# Longest first, so that `.weights.h5` is stripped whole.
FORMAT_SUFFIXES = (".weights.h5", ".features.h5", ".adapters.npz", ".keras", ".hdf5", ".h5", ".npz")


def stem(path: str | os.PathLike) -> str:
    """The file name without its model/cache format suffix (`a.b.keras` -> `a.b`; a folder
    such as a SavedModel keeps its whole name)."""
    name = Path(path).name
    for suffix in FORMAT_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def default_output(path: str | os.PathLike, role: str, suffix: str = ".keras") -> Path:
    """`<stem>.<role><suffix>` next to `path`, e.g. default_output("m.v2.keras", "tuned")
    -> `m.v2.tuned.keras`."""
    return Path(path).parent / f"{stem(path)}.{role}{suffix}"


def sidecar(output: str | os.PathLike, kind: str, suffix: str = "") -> Path:
    """A file that belongs to `output`: sidecar("t.keras", "report", ".json") -> `t.report.json`."""
    return Path(output).parent / f"{stem(output)}.{kind}{suffix}"
