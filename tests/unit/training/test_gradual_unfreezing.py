"""Gradual unfreezing (reuse.training.plans) and discriminative rates in one stage
(reuse.training.stage)."""

from __future__ import annotations

import numpy as np
import pytest


def test_gradual_unfreezing_taps_and_learning_rates(frozen_task):
    from reuse import load_data, load_model
    from reuse.training.options import FinetuneOptions
    from reuse.training.plans import gradual_unfreezing
    from reuse.training.transfer import build_transfer_model

    path, train, _ = frozen_task
    base = load_model(path)
    options = FinetuneOptions(lr=0.01, stage_lr_div=2.0, unfreeze_step=1, max_unfreeze=3)
    transfer = build_transfer_model(base, load_data(train).y, options)
    plans = gradual_unfreezing(transfer, options, taps=["hidden2", "hidden3", "hidden5"])
    assert [p.trainable for p in plans] == [
        [],
        ["hidden5"],
        ["hidden5", "hidden4"],
        ["hidden5", "hidden4", "hidden3"],
    ]
    # Each stage trains from the deepest tap below its lowest trainable layer.
    assert [p.tap for p in plans] == ["hidden5", "hidden3", "hidden3", "hidden2"]
    assert [p.lr for p in plans] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])


def test_discriminative_rates_hold_under_adam(frozen_task):
    """With Adam, one step moves each weight by about its group's rate: the ratio is the decay."""
    from reuse import load_data, load_model
    from reuse.training.inputs import TrainingInputs
    from reuse.training.options import FinetuneOptions
    from reuse.training.stage import StagePlan, run_stage
    from reuse.training.transfer import build_transfer_model

    path, train, _ = frozen_task
    data = load_data(train)
    options = FinetuneOptions(lr=1e-3, optimizer="adam", epochs=1, batch_size=len(data), seed=0)
    transfer = build_transfer_model(load_model(path), data.y, options)
    x, y = data.arrays()
    inputs = TrainingInputs(transfer, x=x, y=y)
    before = {n: np.array(transfer.model.get_layer(n).kernel) for n in ("hidden4", "hidden5")}
    head = transfer.head[-1]
    head_before = np.array(transfer.model.get_layer(head).kernel)
    plan = StagePlan(
        1, ["hidden5", "hidden4"], 1e-3, None, 1, {"hidden5": 1 / 2.6, "hidden4": 1 / 2.6**2}
    )
    run_stage(transfer, plan, inputs, options, [])
    step = {
        n: np.median(np.abs(np.array(transfer.model.get_layer(n).kernel) - before[n]))
        for n in before
    }
    head_step = np.median(np.abs(np.array(transfer.model.get_layer(head).kernel) - head_before))
    assert head_step / step["hidden5"] == pytest.approx(2.6, rel=0.05)
    assert step["hidden5"] / step["hidden4"] == pytest.approx(2.6, rel=0.05)
