"""reuse.training.loop.fit_arrays: Keras' fit semantics for in-memory arrays, one compiled epoch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import mlp


def _data(rows=120, n_in=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, n_in)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y % classes


def _compiled(seed=0, optimizer="adam", lr=0.01, **compile_kwargs):
    import keras

    model = mlp(hidden=2, seed=seed)
    opt = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[optimizer](lr)
    model.compile(
        optimizer=opt,
        loss=compile_kwargs.pop("loss", "sparse_categorical_crossentropy"),
        metrics=["accuracy"],
        **compile_kwargs,
    )
    return model


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


class _Log:
    """A callback that records the calls it gets, built on keras.callbacks.Callback."""

    def __new__(cls, batch_hooks=False, stop_after=None):
        import keras

        class Log(keras.callbacks.Callback):
            calls: list

            def on_train_begin(self, logs=None):
                self.calls.append(("train_begin",))

            def on_epoch_begin(self, epoch, logs=None):
                self.calls.append(("epoch_begin", epoch))

            def on_epoch_end(self, epoch, logs=None):
                self.calls.append(("epoch_end", epoch, dict(logs)))
                if stop_after is not None and epoch >= stop_after:
                    self.model.stop_training = True

            def on_train_end(self, logs=None):
                self.calls.append(("train_end",))

        if batch_hooks:

            class BatchLog(Log):
                def on_train_batch_end(self, batch, logs=None):
                    self.calls.append(("batch_end", batch, dict(logs)))

            log = BatchLog()
        else:
            log = Log()
        log.calls = []
        return log


@pytest.mark.slow
def test_full_batch_epochs_match_keras_fit():
    """One batch per epoch: the order does not matter, so weights must equal Keras' own fit."""
    import keras

    from reuse.training.loop import fit_arrays

    x, y = _data()
    ours = _compiled(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    theirs = _compiled(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    for model in (ours, theirs):
        model.layers[0].kernel.regularizer = keras.regularizers.L2(0.01)
        assert len(model.losses) == 1
    y_hot = np.eye(3, dtype=np.float32)[y]
    logs = fit_arrays(ours, x, y_hot, batch_size=len(x), epochs=4, seed=0)
    history = theirs.fit(x, y_hot, batch_size=len(x), epochs=4, shuffle=False, verbose=0)
    for a, b in zip(_weights(ours), _weights(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [row["loss"] for row in logs] == pytest.approx(history.history["loss"], rel=1e-5)
    assert int(ours.optimizer.iterations) == 4


def test_loss_goes_down_and_every_batch_is_a_step():
    from reuse.training.loop import fit_arrays

    x, y = _data(rows=130)
    model = _compiled()
    logs = fit_arrays(model, x, y, batch_size=32, epochs=6, seed=0)
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert set(logs[0]) == {"loss", "accuracy"}
    assert int(model.optimizer.iterations) == 6 * 5  # ceil(130 / 32) steps per epoch


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_order():
    from reuse.training.loop import fit_arrays, shuffled_order

    x, y = _data()
    runs = []
    for seed in (3, 3, 4):
        model = _compiled()
        fit_arrays(model, x, y, batch_size=16, epochs=2, seed=seed)
        runs.append(_weights(model))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))
    assert sorted(shuffled_order(10, 0, 1)) == list(range(10))
    assert not np.array_equal(shuffled_order(50, 0, 0), shuffled_order(50, 0, 1))


def test_validation_logs_equal_evaluate_after_the_epoch():
    from reuse.training.loop import fit_arrays

    x, y = _data(rows=200)
    model = _compiled()
    logs = fit_arrays(
        model, x[:150], y[:150], batch_size=32, epochs=2, seed=0, validation_data=(x[150:], y[150:])
    )
    assert set(logs[-1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    loss, accuracy = model.evaluate(x[150:], y[150:], batch_size=32, verbose=0)
    assert logs[-1]["val_loss"] == pytest.approx(loss, rel=1e-5)
    assert logs[-1]["val_accuracy"] == pytest.approx(accuracy)


def test_callbacks_get_fits_calls_and_stop_training():
    from reuse.training.loop import fit_arrays

    x, y = _data()
    log = _Log(stop_after=3)
    fit_arrays(_compiled(), x, y, batch_size=32, epochs=9, initial_epoch=2, callbacks=[log], seed=0)
    names = [c[0] if c[0] in ("train_begin", "train_end") else c[:2] for c in log.calls]
    assert names == [
        "train_begin",
        ("epoch_begin", 2),
        ("epoch_end", 2),
        ("epoch_begin", 3),
        ("epoch_end", 3),
        "train_end",
    ]
    assert set(log.calls[2][2]) == {"loss", "accuracy"}


def test_batch_hooks_run_every_32_batches_and_whole_epochs_otherwise():
    from reuse.training.loop import STEPS_PER_CALL, fit_arrays, has_batch_hooks

    x, y = _data(rows=70 * 4)  # 70 batches of 4
    plain, hooked = _Log(), _Log(batch_hooks=True)
    assert not has_batch_hooks([plain]) and has_batch_hooks([plain, hooked])
    fit_arrays(_compiled(), x, y, batch_size=4, epochs=1, callbacks=[hooked], seed=0)
    batches = [c[1] for c in hooked.calls if c[0] == "batch_end"]
    assert STEPS_PER_CALL == 32 and batches == [31, 63, 69]
    assert all(np.isfinite(c[2]["loss"]) for c in hooked.calls if c[0] == "batch_end")


def test_epoch_ends_at_the_first_non_finite_loss():
    from reuse.training.loop import fit_arrays, shuffled_order

    x, y = _data(rows=100)
    x[37, 2] = np.nan  # one bad row: its batch gives a NaN loss
    model = _compiled(optimizer="sgd", lr=0.01)
    logs = fit_arrays(model, x, y, batch_size=10, epochs=1, seed=5)
    bad_batch = int(np.where(shuffled_order(100, 5, 0) == 37)[0][0]) // 10
    assert int(model.optimizer.iterations) == bad_batch + 1
    assert not np.isfinite(logs[0]["loss"])


def test_float64_inputs_are_cast_like_keras():
    from reuse.training.loop import fit_arrays

    x, y = _data()
    model = _compiled()
    logs = fit_arrays(model, x.astype(np.float64), y, batch_size=32, epochs=1, seed=0)
    assert np.isfinite(logs[0]["loss"])
    assert all(np.asarray(w).dtype == np.float32 for w in model.get_weights())


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_a_new_loop_per_call_does_not_warn_about_retracing(caplog):
    import logging

    from reuse.training.loop import fit_arrays

    x, y = _data(rows=20)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for _ in range(8):  # TensorFlow warns from the 5th trace of one function on
            fit_arrays(_compiled(), x, y, batch_size=10, epochs=1, seed=0)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_no_rows_is_refused():
    from reuse.core.errors import DataError
    from reuse.training.loop import fit_arrays

    with pytest.raises(DataError, match="no rows"):
        fit_arrays(_compiled(), np.zeros((0, 8), np.float32), np.zeros(0), batch_size=4, epochs=1)


def test_rows_of_x_and_y_must_match():
    from reuse.core.errors import DataError
    from reuse.training.loop import fit_arrays

    with pytest.raises(DataError, match="5 input rows but 4 targets"):
        fit_arrays(_compiled(), np.zeros((5, 8), np.float32), np.zeros(4), batch_size=4, epochs=1)


def test_validation_batches_hold_up_to_the_byte_budget_and_at_least_batch_size():
    from reuse.training import loop

    small = np.zeros((150, 784), np.float32)  # 470 kB: one batch
    assert loop.validation_batch_size(small, 20) == 150
    big = np.zeros((500, 224 * 224 * 3), np.float32)  # 602 kB a row
    rows = loop.VALIDATION_BATCH_BYTES // (224 * 224 * 3 * 4)
    assert loop.validation_batch_size(big, 20) == rows
    assert loop.validation_batch_size(big, 64) == 64  # never below the training batch
    assert loop.validation_batch_size(np.zeros((5, 3), np.float32), 32) == 5


def test_metrics_restart_every_epoch_and_for_validation():
    """The compiled reset: each epoch's training metrics count that epoch's rows only (two
    views of different rows, nothing learns), and validation does not carry them."""
    from reuse.training.loop import fit_arrays

    x, y = _data(rows=200)
    other, _ = _data(rows=150, seed=1)
    model = _compiled(lr=0.0)
    logs = fit_arrays(
        model,
        np.stack([x[:150], other]),
        y[:150],
        views=True,
        batch_size=50,
        epochs=3,
        seed=0,
        validation_data=(x[150:], y[150:]),
    )
    for epoch, rows in ((0, x[:150]), (1, other), (2, x[:150])):
        loss, acc = model.evaluate(rows, y[:150], batch_size=150, verbose=0)
        assert logs[epoch]["accuracy"] == pytest.approx(acc)
        assert logs[epoch]["loss"] == pytest.approx(loss, rel=1e-5)
    val_loss, val_acc = model.evaluate(x[150:], y[150:], batch_size=150, verbose=0)
    assert logs[1]["val_accuracy"] == pytest.approx(val_acc)
    assert logs[1]["val_loss"] == pytest.approx(val_loss, rel=1e-5)


def test_state_is_built_before_the_step_is_traced_so_it_traces_once():
    """Optimizer slots and metric variables exist before the first compiled call: a
    `tf.function` that creates variables is traced twice."""
    from reuse.training.loop import build_state

    x, y = _data()
    model = _compiled()
    before = _weights(model)
    assert not model.optimizer.built
    build_state(model, (x[:32], y[:32]))
    assert model.optimizer.built
    assert model.metrics_variables  # the loss tracker's and accuracy's totals and counts
    # symbolic: no step ran, nothing moved
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model), strict=True))


def test_weight_snapshot_equals_get_weights():
    from reuse.training.callbacks import WeightSnapshot
    from reuse.training.loop import fit_arrays

    x, y = _data()
    model = _compiled()
    fit_arrays(model, x, y, batch_size=32, epochs=1, seed=0)
    taken = WeightSnapshot(model).take()
    expected = model.get_weights()
    assert len(taken) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(taken, expected, strict=True))
    fit_arrays(model, x, y, batch_size=32, epochs=2, initial_epoch=1, seed=0)
    assert not all(np.array_equal(a, b) for a, b in zip(taken, model.get_weights(), strict=True))
