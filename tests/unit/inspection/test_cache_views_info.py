"""`reuse inspect` on a cache of augmented views shows the spec, K, seed and image shape that
finetune's --augment must match; it used to show none of them."""

from __future__ import annotations

import json

import h5py

from reuse.inspection.cache import inspect_cache
from tests.unit.inspection.test_cache import _hand_made_cache


def test_views_cache_info_names_its_augmentation(tmp_path):
    path = _hand_made_cache(tmp_path / "v.h5", complete=True)
    with h5py.File(path, "a") as f:
        f.attrs.update(
            augment="shift:0.08,rotate:0.04,zoom:0.08",
            views=4,
            augment_seed=3,
            image_shape=json.dumps([28, 28, 1]),
            input_views=True,
        )
    info = inspect_cache(path).info
    assert info["augment"] == "shift:0.08,rotate:0.04,zoom:0.08"
    assert (info["views"], info["augment_seed"], info["image_shape"]) == (4, 3, "28,28,1")
    assert info["input_views"] is True


def test_a_plain_cache_has_no_views_fields(tmp_path):
    info = inspect_cache(_hand_made_cache(tmp_path / "p.h5", complete=True)).info
    assert "views" not in info and "augment" not in info
