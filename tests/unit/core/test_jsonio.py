"""reuse.core.jsonio: the one JSON encoder (NumPy values, paths)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reuse.core import jsonio


def test_numpy_scalars_arrays_and_paths_become_json():
    value = {
        "f": np.float32(0.25),
        "i": np.int64(3),
        "b": np.bool_(True),
        "a": np.arange(4).reshape(2, 2),
        "p": Path("/x/y.keras"),
    }
    assert json.loads(jsonio.dumps(value)) == {
        "f": 0.25,
        "i": 3,
        "b": True,
        "a": [[0, 1], [2, 3]],
        "p": "/x/y.keras",
    }


def test_json_keywords_pass_through():
    assert jsonio.dumps({"b": 1, "a": [1, 2]}, indent=1, sort_keys=True) == json.dumps(
        {"b": 1, "a": [1, 2]}, indent=1, sort_keys=True
    )


def test_strict_refuses_and_lenient_writes_str():
    class Thing:
        def __str__(self):
            return "thing"

    with pytest.raises(TypeError, match="Thing is not JSON serializable"):
        jsonio.dumps({"x": Thing()})
    assert json.loads(jsonio.dumps({"x": Thing(), "n": np.float64(1.5)}, lenient=True)) == {
        "x": "thing",
        "n": 1.5,
    }
