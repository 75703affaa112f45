"""--stage-lr find: each gradual stage gets its learning rate from a short range test."""

import numpy as np
import pytest

from reuse.core.errors import UsageError
from reuse.training.lr_range import valley
from tests.helpers import classification_data, mlp


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_each_stage_finds_its_own_rate_and_weights_are_restored_before_training():
    import reuse

    x, y = classification_data(n=60, n_in=8)
    result = reuse.finetune(
        mlp(), (x, y), val=(x[:15], y[:15]), unfreeze="gradual", stage_lr="find", epochs=2, seed=0
    )
    rates = [s.lr for s in result.stages]
    assert len(rates) >= 2
    # Not the fixed halving of --stage-lr div, and never above the previous stage's rate.
    assert rates[1] != pytest.approx(rates[0] / 2)
    assert all(
        b <= a * 1.0000001 or i == 0 for i, (a, b) in enumerate(zip(rates, rates[1:], strict=False))
    )
    assert all(np.isfinite(row["loss"]) for row in result.history)


@pytest.mark.slow
def test_a_given_lr_wins_over_the_range_test():
    import reuse

    x, y = classification_data(n=40)
    result = reuse.finetune(
        mlp(),
        (x, y),
        val=(x[:10], y[:10]),
        unfreeze="gradual",
        stage_lr="find",
        lr=0.003,
        epochs=1,
        seed=0,
        max_unfreeze=2,
    )
    assert result.stages[0].lr == pytest.approx(0.003)
    assert result.stages[1].lr == pytest.approx(0.0015)


def test_bad_stage_lr_mode_is_refused():
    from reuse.training.options import FinetuneOptions

    with pytest.raises(UsageError, match="--stage-lr"):
        FinetuneOptions(stage_lr="guess").check()


def test_valley_rule_picks_inside_the_descent():
    lrs = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]
    assert valley(lrs, [2.3, 2.3, 2.2, 1.8, 1.1, 0.7, 9.0]) == 1e-5
