"""`reuse inspect` for weight-only files: one row per tensor, with statistics.

Reads through `reuse.formats.weight_files` (every weight format reuse reads) and reports the
model's weights apart from optimizer and bookkeeping tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reuse.formats.paths import checkpoint_prefix
from reuse.formats.weight_files import FORMAT_TITLES, read_weight_file
from reuse.inspection.result import Inspection
from reuse.inspection.summary import tensor_stats

# Files up to this size get min/max/mean/zeros in `reuse inspect`; larger ones only names and shapes.
STATS_LIMIT_BYTES = 64 * 1024 * 1024


def inspect_weights(path: str | os.PathLike) -> Inspection:
    """`reuse inspect` for a weight-only file: one row per tensor (name, shape, dtype, stats).

    Statistics (min, max, mean, fraction of zeros) are computed for files up to 64 MB.

    Example:
        >>> info = inspect_weights("mlp.pt")
        >>> info.rows[0]["name"]
        'fc1.weight'

    Args:
        path: a weight-only file, or a TensorFlow checkpoint prefix / folder.

    Returns:
        An Inspection with kind "weights": one row per tensor (name, layer when the file
        names layers, shape, dtype, kind when some are not weights, and min, max, mean,
        zeros for files up to STATS_LIMIT_BYTES); `info` holds the format, the number of
        tensors and of weight values, and the reader's notes.

    Raises:
        ModelLoadError: see `reuse.formats.weight_files.read_weight_file`.
    """
    p = Path(path)
    size = _size_on_disk(p)
    with_stats = size <= STATS_LIMIT_BYTES
    wf = read_weight_file(p, names_only=not with_stats)
    has_layer = any(t.layer for t in wf.tensors)
    has_kind = any(t.kind != "weight" for t in wf.tensors)
    columns = [
        "name",
        *(["layer"] if has_layer else []),
        "shape",
        "dtype",
        *(["kind"] if has_kind else []),
    ]
    if with_stats:
        columns += ["min", "max", "mean", "zeros"]
    rows = []
    for t in wf.tensors:
        row = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
        if has_layer:
            row["layer"] = t.layer
        if has_kind:
            row["kind"] = t.kind
        if with_stats:
            row.update(tensor_stats(t.value) if t.value is not None else {})
        rows.append(row)
    weights = [t for t in wf.tensors if t.kind == "weight"]
    info = {
        "format": FORMAT_TITLES[wf.format],
        "tensors": len(wf.tensors),
        "parameters": int(sum(int(np.prod(t.shape)) for t in weights)),
    }
    others = len(wf.tensors) - len(weights)
    if others:
        info["optimizer / bookkeeping tensors"] = others
    if not with_stats:
        info["statistics"] = f"skipped (file over {STATS_LIMIT_BYTES // 2**20} MB)"
    for i, note in enumerate(wf.notes):
        info[f"note{'' if i == 0 else i + 1}"] = note
    return Inspection(kind="weights", path=str(p), columns=columns, rows=rows, info=info)


def _size_on_disk(p: Path) -> int:
    prefix = checkpoint_prefix(p)
    if prefix is not None:
        return sum(f.stat().st_size for f in prefix.parent.glob(prefix.name + ".data-*"))
    return p.stat().st_size if p.is_file() else 0
