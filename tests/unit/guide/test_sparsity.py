"""reuse.guide.sparsity.sparsify: per-layer and global magnitude pruning, thresholds, layer
selection."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import mlp


def test_sparsify_layer_and_global_scope():
    from reuse.guide.sparsity import sparsify

    model = mlp(n_in=8, hidden=2, units=10, n_out=3, seed=0)
    biases = [np.array(layer.bias) for layer in model.layers]
    report = sparsify(model, sparsity=0.5, scope="layer")
    for row in report.rows:
        assert row["zeros"] == int(0.5 * row["size"])
    assert [np.array(layer.bias) for layer in model.layers][0].tolist() == biases[
        0
    ].tolist()  # biases untouched

    model = mlp(n_in=8, hidden=2, units=10, n_out=3, seed=0)
    kernels = np.concatenate([np.abs(np.array(layer.kernel)).ravel() for layer in model.layers])
    report = sparsify(model, sparsity=0.7, scope="global")
    assert report.zeros == int(0.7 * kernels.size)
    # global: the survivors are the largest weights over all layers
    survivors = np.concatenate([np.abs(np.array(layer.kernel)).ravel() for layer in model.layers])
    assert survivors[survivors > 0].min() >= np.sort(kernels)[report.zeros - 1]


def test_sparsify_threshold_and_layer_selection():
    from reuse.core.errors import SelectionError
    from reuse.guide.sparsity import sparsify

    model = mlp(n_in=8, hidden=3, units=10, n_out=3, seed=0)
    untouched = np.array(model.get_layer("hidden3").kernel)
    report = sparsify(model, threshold=0.2, layers="hidden[12]")
    assert [r["layer"] for r in report.rows] == ["hidden1", "hidden2"]
    for name in ("hidden1", "hidden2"):
        k = np.array(model.get_layer(name).kernel)
        assert np.all((k == 0) | (np.abs(k) >= 0.2)) and np.any(k == 0)
    assert np.array_equal(np.array(model.get_layer("hidden3").kernel), untouched)
    with pytest.raises(SelectionError, match="no layer name fully matches"):
        sparsify(model, threshold=0.2, layers="hiden9")
