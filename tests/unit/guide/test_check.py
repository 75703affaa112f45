"""reuse.guide.check: a healthy model passes every check and comes back unchanged."""

from __future__ import annotations

import numpy as np

from tests.helpers import copy_weights


def test_check_passes_a_healthy_model_and_leaves_it_unchanged(tuning_task):
    from reuse import load_data, load_model
    from reuse.guide.check import check
    from reuse.training.options import FinetuneOptions

    _, path, train, _ = tuning_task
    base = load_model(path)
    before = copy_weights(base)
    results = check(base, load_data(train), FinetuneOptions(seed=0, l2=0.5, dropout=0.5), steps=200)
    assert [r.name for r in results] == ["initial_loss", "overfit_tiny", "gradients", "activations"]
    by_name = {r.name: r for r in results}
    # Regularization off: the strong l2 and dropout above must not count in the reference loss.
    assert by_name["initial_loss"].status == "pass", by_name["initial_loss"].reason
    assert by_name["overfit_tiny"].status == "pass", by_name["overfit_tiny"].reason
    assert by_name["overfit_tiny"].details["rows"] == 20
    assert {row["layer"] for row in by_name["gradients"].details["layers"]} >= {
        "hidden1",
        "hidden4",
    }
    for a, b in zip(before, base.get_weights(), strict=True):
        assert np.array_equal(a, b)
