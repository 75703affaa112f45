"""Caches made in shards (`cache_features(shard=...)`, `cache_shard`) and joined by
`merge_parts` into HDF5 virtual datasets: equal to a one-process cache row for row, checked by
the same fingerprint rules, and refused when parts are missing or foreign."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from reuse.cache import cache_features, open_cache
from reuse.cache.engines import cache_shard
from reuse.cache.shards import merge_parts, parse_shard, shard_file, shard_range
from reuse.core.errors import CacheIncomplete, CacheMismatch, UsageError
from reuse.data import load_data
from tests.helpers import assert_features_equal, frozen_mlp


def test_shard_spec_and_ranges():
    assert parse_shard("2/8") == (2, 8)
    for bad in ("8/8", "-1/2", "1", "a/b"):
        with pytest.raises(UsageError, match="--shard takes I/N"):
            parse_shard(bad)
    ranges = [shard_range(10, i, 3) for i in range(3)]
    assert ranges == [(0, 3), (3, 6), (6, 10)]
    assert shard_file("out/feats.h5", 2, 8).name == "feats.part-00002-of-00008.h5"


@pytest.fixture
def sharded(frozen_task, tmp_path):
    """A one-process cache of the frozen task and the same cache made as 3 shards, joined."""
    path, train, _ = frozen_task
    import keras

    model = keras.models.load_model(path)
    data = load_data(train)
    whole = cache_features(
        model, data, tmp_path / "whole.h5", taps=["hidden1", "hidden3"], batch_size=16
    )
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    out = parts_dir / "joined.h5"
    for i in range(3):
        part = cache_shard(model, data, out, i, 3, taps=["hidden1", "hidden3"], batch_size=16)
        assert part.rows == len(range(*shard_range(len(data), i, 3)))
    joined = merge_parts([shard_file(out, i, 3) for i in (2, 0, 1)], out)
    return model, data, whole, joined


def test_joined_cache_equals_the_one_process_cache_row_for_row(sharded, tmp_path, monkeypatch):
    model, data, whole, joined = sharded
    assert joined["rows"] == len(data) and len(joined["parts"]) == 3
    monkeypatch.chdir(tmp_path.parent)  # parts are found relative to the joined file
    with (
        open_cache(whole.path, model=model) as one,
        open_cache(joined["path"], model=model) as many,
    ):
        assert many.dataset("hidden3").is_virtual  # no copy of the features
        for tap in one.taps:
            assert_features_equal(many.array(tap), one.array(tap))
        np.testing.assert_array_equal(many.labels, one.labels)
        np.testing.assert_array_equal(many.indices, one.indices)
        assert many.fingerprint == one.fingerprint and many.data_identity == one.data_identity
        assert many.rows == one.rows
        batches = [x for x, _ in many.batches("hidden3", 16)]
        assert_features_equal(np.concatenate(batches), one.array("hidden3"))


def test_a_lone_part_is_not_a_cache_and_a_joined_cache_needs_its_parts(sharded):
    model, _, _, joined = sharded
    part = joined["parts"][1]
    with pytest.raises(CacheMismatch, match="is shard 1/3 of a cache"):
        open_cache(part, model=model)
    part.rename(part.with_suffix(".moved"))
    with pytest.raises(CacheIncomplete, match="1 are missing"):
        open_cache(joined["path"], model=model)


def test_merge_refuses_missing_duplicate_and_foreign_parts(sharded, frozen_task, tmp_path):
    model, data, _, joined = sharded
    parts = joined["parts"]
    with pytest.raises(CacheIncomplete, match="shard\\(s\\) 2/3 missing"):
        merge_parts(parts[:2], tmp_path / "x.h5")
    with pytest.raises(CacheMismatch, match="given twice"):
        merge_parts([parts[0], parts[0], parts[1]], tmp_path / "x.h5")
    # A shard made from a model with other weights: the fingerprints differ.
    other = frozen_mlp(upto=3, seed=5)
    foreign = tmp_path / "other" / "joined.h5"
    foreign.parent.mkdir()
    cache_shard(other, data, foreign, 2, 3, taps=["hidden1", "hidden3"], batch_size=16)
    with pytest.raises(CacheMismatch, match="fingerprint differs"):
        merge_parts([parts[0], parts[1], shard_file(foreign, 2, 3)], tmp_path / "x.h5")


def test_resume_keeps_finished_parts_of_the_same_model_and_redoes_others(sharded):
    from reuse.cache import fingerprint

    model, data, _, joined = sharded
    taps = {"taps": ["hidden1", "hidden3"], "batch_size": 16}
    assert cache_shard(model, data, joined["path"], 0, 3, resume=True, **taps) is None
    other = frozen_mlp(n_in=8, upto=6, units=12, n_out=4, seed=5)
    redone = cache_shard(other, data, joined["path"], 0, 3, resume=True, **taps)
    assert redone is not None and redone.rows == 33
    with h5py.File(joined["parts"][0], "r") as f:
        assert f.attrs["fingerprint"] == fingerprint(other, taps["taps"])["fingerprint"]
