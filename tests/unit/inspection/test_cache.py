"""`reuse.inspection.cache`: `reuse inspect` on feature caches, complete or not; the layering fix."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import h5py
import numpy as np

from reuse.cache.layout import CACHE_MARK, FORMAT_VERSION, tap_dataset_name
from reuse.inspection import inspect
from reuse.inspection.cache import inspect_cache
from tests.helpers import ROOT


def _hand_made_cache(path: Path, complete: bool) -> Path:
    """A cache written with the layout's names only (no model): 10 rows, one nested tap."""
    taps = ["base/block_1", "hidden2"]
    with h5py.File(path, "w", track_order=True) as f:
        f.create_dataset(
            tap_dataset_name(taps[0]),
            data=np.zeros((10, 4), "float32"),
            chunks=(5, 4),
            compression="gzip",
        )
        f[tap_dataset_name(taps[0])].attrs["tap"] = taps[0]
        f.create_dataset(tap_dataset_name(taps[1]), data=np.ones((10, 3), "float32"), chunks=(5, 3))
        f[tap_dataset_name(taps[1])].attrs["tap"] = taps[1]
        f["labels"] = np.arange(10) % 2
        f["indices"] = np.arange(10, dtype=np.int64)
        f.attrs[CACHE_MARK] = FORMAT_VERSION
        f.attrs["taps"] = json.dumps(taps)
        f.attrs["rows"] = 10
        f.attrs["rows_done"] = 10 if complete else 5
        f.attrs["batch_size"] = 5
        f.attrs["fingerprint"] = "f" * 64
        f.attrs["data_identity"] = json.dumps(
            {"path": "d.npz", "sha256": "abc", "selection": "classes=3,4"}
        )
        f.attrs["class_map"] = json.dumps({"3": 0, "4": 1})
        f.attrs["compression"] = "none"
        f.attrs["model_path"] = "/m/frozen.keras"
        if complete:
            f.attrs["complete"] = True
    return path


def test_inspect_cache_rows_and_metadata(tmp_path):
    info = inspect_cache(_hand_made_cache(tmp_path / "feats.h5", complete=True))
    assert info.kind == "cache" and info.path == str(tmp_path / "feats.h5")
    rows = {r["dataset"]: r for r in info.rows}
    assert set(rows) == {"features/base%2Fblock_1", "features/hidden2", "labels", "indices"}
    nested = rows["features/base%2Fblock_1"]
    assert (
        nested["tap"] == "base/block_1"
        and nested["shape"] == [10, 4]
        and nested["chunks"] == [5, 4]
    )
    assert nested["compression"] == "gzip" and rows["features/hidden2"]["compression"] == "none"
    assert rows["labels"]["tap"] is None
    assert rows["features/hidden2"]["stored_bytes"] == 10 * 3 * 4
    assert info.info["complete"] is True and info.info["rows"] == 10 and "status" not in info.info
    assert info.info["taps"] == ["base/block_1", "hidden2"]
    assert info.info["data"] == "d.npz" and info.info["selection"] == "classes=3,4"
    assert info.info["class_map"] == {"3": 0, "4": 1} and info.info["model"] == "/m/frozen.keras"


def test_inspect_routes_caches_and_describes_unfinished_ones(tmp_path):
    part = _hand_made_cache(tmp_path / ".feats.part.h5", complete=False)
    info = inspect(part)
    assert info.kind == "cache"
    assert info.info["complete"] is False and info.info["rows_done"] == 5
    assert "--resume" in info.info["status"]


def test_real_cache_fingerprint_matches_the_model(tmp_path):
    from reuse.cache import cache_features, fingerprint
    from reuse.data.dataset import load_data
    from tests.helpers import classification_data, mlp, save_npz

    model = mlp()
    for layer in model.layers[:2]:
        layer.trainable = False
    x, y = classification_data(40)
    data = load_data(save_npz(tmp_path / "d.npz", x, y))
    result = cache_features(model, data, tmp_path / "feats.h5", batch_size=16)
    info = inspect(tmp_path / "feats.h5")
    assert info.info["taps"] == result.taps and info.info["rows"] == 40
    assert info.info["fingerprint"] == fingerprint(model, result.taps)["fingerprint"]
    tap = next(r for r in info.rows if r["tap"] == result.taps[-1])
    assert tap["shape"] == [40, *result.shapes[result.taps[-1]]] and tap["chunks"][0] == 16


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_cache_and_formats_never_import_inspection():
    lower = [*(ROOT / "reuse" / "cache").glob("*.py"), *(ROOT / "reuse" / "formats").glob("*.py")]
    assert lower
    offenders = {
        p.name: sorted(m for m in _imports(p) if m.startswith("reuse.inspection")) for p in lower
    }
    assert not {k: v for k, v in offenders.items() if v}
