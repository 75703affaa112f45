"""One `WeightSnapshot` per stage (each a new compiled read of another model's weights) is
expected, so TensorFlow's "triggered tf.function retracing" warning about it is dropped, as it
is for the training loops: a 4-stage gradual run printed it on stderr twice."""

from __future__ import annotations

import logging

import numpy as np

from tests.helpers import mlp


def test_new_weight_snapshots_do_not_warn_about_retracing(caplog):
    from reuse.training.callbacks import WeightSnapshot
    from reuse.training.loop import _quiet_retracing_warning

    _quiet_retracing_warning()  # what fit_arrays installs before a stage trains
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for seed in range(8):  # TensorFlow warns from the 5th trace on
            model = mlp(hidden=2, seed=seed)
            taken = WeightSnapshot(model).take()
            assert all(
                np.array_equal(a, b) for a, b in zip(taken, model.get_weights(), strict=True)
            )
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_other_retracing_warnings_still_pass():
    from reuse.training.loop import _OwnRetracing

    record = logging.LogRecord(
        "tensorflow",
        logging.WARNING,
        __file__,
        1,
        "5 out of the last 5 calls to <function user_fn at 0x1> triggered tf.function retracing.",
        None,
        None,
    )
    assert _OwnRetracing.filter(record)
