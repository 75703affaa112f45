"""reuse.training.lr_range: the suggestion rules (valley, steepest) on a known loss curve."""

from __future__ import annotations

import numpy as np


def test_suggestion_rules_on_a_known_curve():
    from reuse.training.lr_range import steepest, valley

    lrs = list(np.logspace(-6, 1, 50))
    # Flat, then a steady fall from step 10 to 40 with its steepest part at 20-25, then a blow-up.
    losses = (
        [2.3] * 10
        + list(np.linspace(2.3, 2.0, 10))
        + list(np.linspace(1.9, 0.9, 6))
        + list(np.linspace(0.85, 0.3, 14))
        + list(np.linspace(0.4, 9, 10))
    )
    assert lrs[19] <= steepest(lrs, losses) <= lrs[26]
    pick = valley(lrs, losses)
    assert lrs[10] < pick < lrs[40]  # inside the descent, before the minimum
