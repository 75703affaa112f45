"""The batch split of `reuse.training.distribute` and its option checks (no devices needed)."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import UsageError
from reuse.training.distribute import chunk_bounds, make_strategy, steps_per_epoch


def test_each_global_batch_is_split_into_contiguous_chunks_of_near_equal_size():
    bounds = chunk_bounds(10, 4, 2)
    assert bounds.tolist() == [[0, 2, 4], [4, 6, 8], [8, 9, 10]]
    odd = chunk_bounds(7, 7, 3)
    assert np.diff(odd[0]).tolist() == [3, 2, 2]
    assert steps_per_epoch(10, 4, 2) == 3 and steps_per_epoch(10, 4, 1) == 3


def test_a_last_batch_smaller_than_the_replicas_joins_the_batch_before():
    bounds = chunk_bounds(9, 4, 2)  # batches 4, 4, 1: the 1 row cannot feed 2 replicas
    assert bounds[:, 0].tolist() == [0, 4] and bounds[-1].tolist() == [4, 7, 9]
    assert (np.diff(bounds, axis=1) > 0).all()


def test_fewer_rows_than_replicas_is_refused():
    with pytest.raises(UsageError, match="3 rows cannot be split over 4 replicas"):
        chunk_bounds(3, 2, 4)


def test_unknown_mode_and_missing_tf_config_are_refused(monkeypatch):
    with pytest.raises(UsageError, match="unknown --distribute"):
        make_strategy("ring")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="needs TF_CONFIG"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        make_strategy("multi-worker")
