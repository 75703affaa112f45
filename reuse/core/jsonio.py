"""The one JSON encoder of `reuse`: what it writes as JSON (records, reports, tables,
checkpoint state) goes through `dumps`, so NumPy values and paths come out the same everywhere.

NumPy scalars become Python numbers (`np.float32(0.5)` -> `0.5`), arrays become nested lists,
paths become strings. Everything else must already be JSON: `dumps` raises TypeError, unless
`lenient=True`, which writes `str(value)` instead (for human-facing reports and tables,
where a stray object should not stop the command).

NumPy is never imported here: a value can only be a NumPy object if NumPy is loaded already.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def plain(value: Any) -> Any:
    """The `default=` hook of `json.dumps`: `value` as a JSON-native Python value.

    Raises:
        TypeError: `value` is neither a NumPy scalar or array nor a path.
    """
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def plain_or_str(value: Any) -> Any:
    """Like `plain`, but any other object becomes `str(value)` instead of raising."""
    try:
        return plain(value)
    except TypeError:
        return str(value)


def dumps(obj: Any, *, lenient: bool = False, **kwargs: Any) -> str:
    """`json.dumps(obj, **kwargs)` with NumPy values and paths converted (see `plain`).

    Args:
        lenient: write `str(value)` for objects JSON cannot hold instead of raising.
        kwargs: passed to `json.dumps` (`indent`, `separators`, `sort_keys`, ...).

    Raises:
        TypeError: an object JSON cannot hold, when not `lenient`.
    """
    return json.dumps(obj, default=plain_or_str if lenient else plain, **kwargs)
