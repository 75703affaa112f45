"""reuse.training.schedules: every --schedule against its formula, epoch units, errors, and custom
schedules that survive a save and a reload in a fresh process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from reuse.core.errors import SpecError
from reuse.surgery.heads import build_layers, loss_for
from reuse.surgery.layer_spec import parse_layer_spec
from reuse.training.optimizers import parse_optimizer
from reuse.training.schedules import parse_schedule
from tests.helpers import ROOT

STEPS = [0, 1, 7, 10, 25, 49, 50, 120]


def lrs(schedule, steps=STEPS):
    return np.array([float(schedule(t)) for t in steps])


def sched(text, lr=0.1, spe=10, epochs=5, **kw):
    return parse_schedule(text, lr=lr, steps_per_epoch=spe, epochs=epochs, **kw)


def test_natural_exp_against_formula():
    import keras

    from reuse.training.schedules import NaturalExpDecay

    s, cbs = sched("natural-exp:decay_rate=0.5,decay_steps=10")
    # Keras's own ExponentialDecay (decay_rate exp(-k)): a saved model loads in plain Keras.
    assert isinstance(s, keras.optimizers.schedules.ExponentialDecay) and cbs == []
    t = np.array(STEPS, dtype=float)
    np.testing.assert_allclose(lrs(NaturalExpDecay(0.1, 10, 0.5)), lrs(s), rtol=1e-6)
    t = np.array(STEPS, dtype=float)
    np.testing.assert_allclose(lrs(s), 0.1 * np.exp(-0.5 * t / 10), rtol=1e-5)
    s, _ = sched("natural-exp:decay_rate=0.5,decay_steps=10,staircase=true")
    np.testing.assert_allclose(lrs(s), 0.1 * np.exp(-0.5 * np.floor(t / 10)), rtol=1e-5)


def test_power_against_formula():
    from reuse.training.schedules import PowerDecay

    s, _ = sched("power:decay_steps=20,power=2")
    assert isinstance(s, PowerDecay)
    t = np.array(STEPS, dtype=float)
    np.testing.assert_allclose(lrs(s), 0.1 / (1 + t / 20) ** 2, rtol=1e-5)
    s, _ = sched("power:s=10,c=1")  # Géron's letters
    import keras

    assert isinstance(s, keras.optimizers.schedules.InverseTimeDecay)  # a Keras built-in
    np.testing.assert_allclose(lrs(s), 0.1 / (1 + t / 10), rtol=1e-5)
    assert sched("power:c=0")[0] == 0.1  # c=0: a constant lr
    s, _ = sched("power")  # default s = one epoch
    assert float(s(10)) == pytest.approx(0.05)


def one_cycle_reference(t, max_lr, total, pct, div, final_div, anneal):
    start, low, rise = max_lr / div, max_lr / div / final_div, pct * total

    def go(a, b, p):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * p)) if anneal == "cos" else a + (b - a) * p

    if t <= rise:
        return go(start, max_lr, t / rise)
    return go(max_lr, low, min((t - rise) / (total - rise), 1.0))


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_against_formula(anneal):
    from reuse.training.schedules import OneCycle

    s, _ = sched(
        f"one-cycle:max_lr=0.5,pct=0.25,div=10,final_div=100,total_steps=40,anneal={anneal}"
    )
    assert isinstance(s, OneCycle)
    expected = [one_cycle_reference(t, 0.5, 40, 0.25, 10, 100, anneal) for t in STEPS]
    np.testing.assert_allclose(lrs(s), expected, rtol=1e-5, atol=1e-9)
    assert float(s(10)) == pytest.approx(0.5)  # peak at pct * total
    assert float(s(0)) == pytest.approx(0.05)
    assert float(s(1000)) == pytest.approx(0.0005)
    s, _ = sched("one-cycle", lr=0.2)  # defaults: max_lr = --lr, total = all steps
    assert float(s(15)) == pytest.approx(0.2)


def test_keras_schedules_match_their_formulas():
    import keras

    sch = keras.optimizers.schedules
    t = np.array(STEPS, dtype=float)
    s, _ = sched("exponential:decay_rate=0.5,decay_steps=10")
    assert isinstance(s, sch.ExponentialDecay)
    np.testing.assert_allclose(lrs(s), 0.1 * 0.5 ** (t / 10), rtol=1e-5)
    s, _ = sched("exponential:decay_rate=0.5,decay_steps=10,staircase=true")
    np.testing.assert_allclose(lrs(s), 0.1 * 0.5 ** np.floor(t / 10), rtol=1e-5)
    s, _ = sched("exponential")  # default: lr0/10 after all T = 50 steps
    assert float(s(50)) == pytest.approx(0.01)
    s, _ = sched("piecewise:boundaries=10;25,values=0.1;0.01;0.001")
    assert isinstance(s, sch.PiecewiseConstantDecay)
    np.testing.assert_allclose(
        lrs(s, [0, 10, 11, 25, 26, 100]), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
    )
    s, _ = sched("polynomial:end_lr=0.01,power=2,decay_steps=20")
    tc = np.minimum(t, 20)
    np.testing.assert_allclose(lrs(s), (0.1 - 0.01) * (1 - tc / 20) ** 2 + 0.01, rtol=1e-5)
    s, _ = sched("polynomial:cycle=true,decay_steps=20")
    assert s.get_config()["cycle"] is True and float(s(25)) > float(s(20))
    s, _ = sched("cosine:warmup_steps=10,decay_steps=20,alpha=0.1")
    assert isinstance(s, sch.CosineDecay)
    assert float(s(0)) == pytest.approx(0.0) and float(s(5)) == pytest.approx(0.05)
    assert float(s(10)) == pytest.approx(0.1)
    assert float(s(20)) == pytest.approx(
        0.1 * (0.1 + 0.9 * (1 + math.cos(math.pi * 0.5)) / 2), rel=1e-5
    )
    assert float(s(100)) == pytest.approx(0.01)
    s, _ = sched("cosine")
    assert float(s(0)) == pytest.approx(0.1) and float(s(50)) == pytest.approx(0.0, abs=1e-8)


def test_lr_must_be_positive():
    with pytest.raises(SpecError, match=r"--lr must be > 0. Received: --lr 0"):
        sched("constant", lr=0)
    with pytest.raises(SpecError, match=r"--lr must be > 0. Received: --lr -1"):
        parse_optimizer("adam", -1)


def test_constant_and_performance():
    import keras

    assert sched("constant") == (0.1, []) and sched(None) == (0.1, []) and sched("") == (0.1, [])
    lr, cbs = sched("performance:factor=0.2,patience=3,min_lr=1e-5")
    assert lr == 0.1 and len(cbs) == 1
    cb = cbs[0]
    assert isinstance(cb, keras.callbacks.ReduceLROnPlateau)
    assert (cb.factor, cb.patience, cb.min_lr, cb.monitor) == (0.2, 3, 1e-5, "val_loss")
    assert sched("performance", validation=False)[1][0].monitor == "loss"
    assert sched("plateau:monitor=val_accuracy")[1][0].monitor == "val_accuracy"


def test_epoch_units():
    s, _ = sched("exponential:decay_epochs=2", spe=10)
    assert s.get_config()["decay_steps"] == 20
    s, _ = sched("exponential:unit=epoch,decay_steps=0.5", spe=10)
    assert s.get_config()["decay_steps"] == 5
    s, _ = sched("cosine:warmup_epochs=1", spe=10, epochs=5)
    assert s.get_config()["warmup_steps"] == 10 and s.get_config()["decay_steps"] == 40
    s, _ = sched("piecewise:boundary_epochs=1;2.5,values=1;0.5;0.1", spe=10)
    assert s.get_config()["boundaries"] == [10, 25]
    s, _ = sched("piecewise:unit=epoch,boundaries=1;2,values=1;0.5;0.1", spe=4)
    assert s.get_config()["boundaries"] == [4, 8]
    s, _ = sched("one-cycle:total_epochs=2", spe=10)
    assert s.get_config()["total_steps"] == 20


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("expo", "unknown schedule 'expo'", "did you mean 'exponential'"),
        ("cosin", "unknown schedule 'cosin'", "'cosine'"),
        (
            "exponential:decay_step=10",
            "schedule exponential has no key `decay_step`",
            "'decay_steps'",
        ),
        (
            "exponential:decay_steps=0",
            "`decay_steps` must be >= 1 step(s). Received: decay_steps=0",
            "",
        ),
        ("exponential:decay_steps=2.5", "whole number of steps", "decay_epochs"),
        (
            "exponential:decay_epochs=0.01",
            "Received: decay_epochs=0.01 (0.01 epochs x 10 steps/epoch = 0 steps)",
            "",
        ),
        (
            "exponential:decay_rate=abc",
            "`decay_rate` must be a number. Received: decay_rate=abc",
            "",
        ),
        ("exponential:staircase=perhaps", "`staircase` must be true or false", ""),
        ("exponential:decay_steps=5,decay_epochs=1", "given twice", ""),
        ("piecewise:boundaries=10;20", "piecewise needs `values`", "piecewise:boundaries="),
        ("piecewise", "piecewise needs `boundaries` and `values`", ""),
        ("piecewise:boundaries=10;20,values=1;2", "one more value than boundaries", ""),
        ("piecewise:boundaries=20;10,values=1;2;3", "must increase strictly", ""),
        (
            "piecewise:boundaries=a;10,values=1;2;3",
            "`boundaries` must be a number. Received: boundaries=a",
            "",
        ),
        ("one-cycle:pct=1.2", "`pct` must be < 1. Received: pct=1.2", ""),
        ("one-cycle:anneal=exp", "`anneal` must be cos or linear", ""),
        ("performance:factor=2", "`factor` must be < 1. Received: factor=2", ""),
        ("performance:patience=x", "`patience` must be a whole number. Received: patience=x", ""),
        ("constant:x=1", "schedule constant takes no keys", ""),
        ("cosine:warmup_target=1", "warm-up target is --lr", ""),
        ("cosine:start_lr=0.1", "`start_lr` needs a warm-up", ""),
        ("exponential:unit=hour", "`unit` must be step or epoch", ""),
        ("cosine:warmup=abc", "`warmup` must be a number. Received: warmup=abc", "e.g. warmup=100"),
    ],
)
def test_schedule_errors(text, needle, hint):
    with pytest.raises(SpecError) as err:
        sched(text)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_custom_schedule_arguments_checked_where_they_enter():
    from reuse.training.schedules import NaturalExpDecay, OneCycle, PowerDecay

    with pytest.raises(SpecError, match=r"`decay_steps` must be > 0. Received: decay_steps=0"):
        PowerDecay(0.1, decay_steps=0)
    with pytest.raises(SpecError, match="decay_steps=-1"):
        NaturalExpDecay(0.1, decay_steps=-1, decay_rate=1)
    with pytest.raises(SpecError, match="total_steps"):
        OneCycle(0.1, total_steps=0)


CUSTOM = [
    "power:decay_steps=4,power=1.5",
    "power:decay_steps=6,power=0.5",
    "one-cycle:max_lr=0.2,pct=0.4,total_steps=30,anneal=linear",
]


@pytest.mark.parametrize("text", CUSTOM)
def test_custom_schedule_config_round_trip(text):
    import inspect

    import keras

    s, _ = sched(text)
    config = s.get_config()
    assert set(config) == set(inspect.signature(type(s).__init__).parameters) - {"self"}
    again = type(s).from_config(config)
    np.testing.assert_allclose(lrs(again), lrs(s))
    serialized = keras.saving.serialize_keras_object(s)
    assert serialized["registered_name"].startswith("reuse>")
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    np.testing.assert_allclose(lrs(clone), lrs(s))


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_saved_models_reload_with_custom_schedules_and_loss(tmp_path):
    """A compiled model whose optimizer uses a reuse schedule reloads (compile=True) in a fresh
    process that only went through reuse.formats.model_io's registration, and gives the same lr."""
    import keras

    from reuse.formats.model_io import save_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.integers(0, 3, size=8)
    expected = {}
    for i, text in enumerate(CUSTOM):
        keras.utils.set_random_seed(0)
        s, _ = sched(text)
        inp = keras.Input((4,))
        out = build_layers(parse_layer_spec("dense:3:softmax"), seed=0)[0](inp)
        model = keras.Model(inp, out)
        model.compile(
            optimizer=parse_optimizer("momentum", s),
            loss=loss_for("sparse_categorical_crossentropy", 0.1),
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # 2 steps
        path = tmp_path / f"m{i}.keras"
        save_model(model, path)
        expected[str(path)] = [float(s(t)) for t in STEPS] + [float(model.optimizer.learning_rate)]
    script = (
        "import json, sys, keras\n"
        "from reuse.formats import model_io\n"
        "model_io._register_custom_objects()\n"
        "out = {}\n"
        "for p in json.loads(sys.argv[1]):\n"
        "    m = keras.models.load_model(p, compile=True)\n"
        "    s = m.optimizer._learning_rate\n"
        f"    out[p] = [float(s(t)) for t in {STEPS}] + [float(m.optimizer.learning_rate),\n"
        "              int(m.optimizer.iterations.numpy()), type(m.loss).__name__]\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(list(expected))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, values in expected.items():
        lr_values, iterations, loss_name = got[path][:-2], got[path][-2], got[path][-1]
        np.testing.assert_allclose(lr_values, values, rtol=1e-6)
        assert iterations == 2
        assert loss_name == "SmoothedSparseCategoricalCrossentropy"
