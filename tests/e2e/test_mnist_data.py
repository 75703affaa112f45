"""load_data on the real MNIST files (skipped without ../shared/data/mnist)."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.data.dataset import load_data


@pytest.mark.slow
def test_real_mnist_classes_per_class(mnist_dir):
    ds = load_data(mnist_dir, classes="5-9", per_class=100, seed=0)
    assert len(ds) == 500 and ds.input_shape == (28, 28)
    assert ds.class_map == {5: 0, 6: 1, 7: 2, 8: 3, 9: 4}
    assert np.bincount(ds.y).tolist() == [100] * 5
    xb = next(ds.reshape_for((None, 784)).batches(64))[1]
    assert xb.shape == (64, 784) and 0.0 <= xb.min() and xb.max() <= 1.0
    assert ds.identity["hash"] == "sha256" and "labels" in ds.identity
    test = load_data(mnist_dir, split="test", limit=10)
    assert len(test) == 10 and test.identity["sha256"] != ds.identity["sha256"]
