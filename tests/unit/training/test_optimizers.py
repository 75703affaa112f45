"""reuse.training.optimizers: the --optimizer spec, the optimizer factory, their errors; FTRL's
exact zeros."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import SpecError
from reuse.training.optimizers import (
    OPTIMIZER_HELP,
    OPTIMIZER_NAMES,
    optimizer_factory,
    parse_optimizer,
)
from tests.helpers import classification_data, mlp


@pytest.mark.parametrize(
    ("text", "cls", "expected"),
    [
        ("sgd", "SGD", {"momentum": 0.0, "nesterov": False}),
        ("momentum", "SGD", {"momentum": 0.9, "nesterov": False}),
        ("nesterov", "SGD", {"momentum": 0.9, "nesterov": True}),
        ("momentum:momentum=0.95", "SGD", {"momentum": 0.95}),
        ("adagrad:initial_accumulator_value=0.2", "Adagrad", {"initial_accumulator_value": 0.2}),
        ("rmsprop:rho=0.8,centered=true", "RMSprop", {"rho": 0.8, "centered": True}),
        (
            "adam:beta1=0.8,beta2=0.99,amsgrad=yes",
            "Adam",
            {"beta_1": 0.8, "beta_2": 0.99, "amsgrad": True},
        ),
        ("adamw:weight_decay=0.01", "AdamW", {"weight_decay": 0.01}),
        ("nadam:eps=1e-6", "Nadam", {"epsilon": 1e-6}),
        (
            "ftrl:l1=0.01,l2=0.001,learning_rate_power=-0.7",
            "Ftrl",
            {
                "l1_regularization_strength": 0.01,
                "l2_regularization_strength": 0.001,
                "learning_rate_power": -0.7,
            },
        ),
        ("adam:clipnorm=1", "Adam", {"clipnorm": 1.0}),
        ("sgd:clipvalue=0.5", "SGD", {"clipvalue": 0.5}),
    ],
)
def test_parse_optimizer(text, cls, expected):
    opt = parse_optimizer(text, 0.05)
    assert type(opt).__name__ == cls
    config = opt.get_config()
    assert config["learning_rate"] == pytest.approx(0.05)
    for key, value in expected.items():
        assert config[key] == pytest.approx(value)


def test_every_optimizer_name_builds_and_is_documented():
    for name in OPTIMIZER_NAMES:
        assert parse_optimizer(name, 0.01) is not None
        assert f"\n  {name} " in OPTIMIZER_HELP


def test_optimizer_factory_gives_fresh_optimizers_and_keras_default_lr():
    make = optimizer_factory("momentum", clipnorm=1.0)
    a, b = make(0.1), make(0.2)
    assert a is not b and a.get_config()["clipnorm"] == 1.0
    assert float(a.learning_rate) == pytest.approx(0.1) and float(b.learning_rate) == pytest.approx(
        0.2
    )
    assert float(make().learning_rate) == pytest.approx(0.01)  # Keras' SGD default
    assert str(make) == "momentum:momentum=0.9,clipnorm=1.0"
    assert type(optimizer_factory(None)(1e-3)).__name__ == "Adam"


@pytest.mark.parametrize(
    ("text", "kwargs", "needle", "hint"),
    [
        ("adamm", {}, "unknown optimizer 'adamm'", "did you mean 'adam'"),
        ("nesterow", {}, "unknown optimizer 'nesterow'", "'nesterov'"),
        ("momentum:momentum=abc", {}, "`momentum` must be a number. Received: momentum=abc", ""),
        ("momentum:momentum=1.5", {}, "`momentum` must be < 1. Received: momentum=1.5", ""),
        ("adam:beta=0.9", {}, "optimizer adam has no key `beta`", "beta_1"),
        (
            "sgd:nesterov=maybe",
            {},
            "`nesterov` must be true or false. Received: nesterov=maybe",
            "",
        ),
        ("adam:lr=0.1", {}, "set the learning rate with --lr", "--lr 0.1"),
        ("adam:beta1=0.9,beta_1=0.8", {}, "`beta_1` is given twice", ""),
        ("adam:beta1", {}, "'beta1' is not key=value", ""),
        ("ftrl:l1=-1", {}, "`l1` must be >= 0. Received: l1=-1", ""),
        ("adam:clipnorm=2", {"clipnorm": 1.0}, "--clip-norm 1.0 contradicts clipnorm=2.0", ""),
        (
            "adam:global_clipnorm=1",
            {"clipnorm": 1.0},
            "clipnorm and global_clipnorm cannot be used together",
            "",
        ),
        (
            "adam",
            {"clipnorm": 1.0, "clipvalue": 0.5},
            "clipnorm and clipvalue cannot be used together",
            "keep one of --clip-norm / --clip-value",
        ),
        (
            "adam:ema_overwrite_frequency=0.5",
            {},
            "`ema_overwrite_frequency` must be a whole number",
            "",
        ),
        ("", {}, "--optimizer is empty", ""),
        ("adam", {"clipnorm": 0}, "--clip-norm must be > 0. Received: --clip-norm 0", ""),
    ],
)
def test_optimizer_errors(text, kwargs, needle, hint):
    with pytest.raises(SpecError) as err:
        optimizer_factory(text if text != "" else " ", **kwargs)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_unknown_optimizer_key_lists_valid_keys():
    with pytest.raises(SpecError) as err:
        optimizer_factory("ftrl:l3=1")
    for key in ("l1_regularization_strength", "learning_rate_power", "clipnorm"):
        assert key in err.value.hint


def test_ftrl_l1_gives_exact_zeros_where_adam_l1_does_not():
    from reuse.training.finetune import finetune

    x, y = classification_data(n=60, n_in=8, n_classes=3, seed=2)
    zeros = {}
    for label, kwargs in (
        ("ftrl", {"optimizer": "ftrl:l1=0.05", "lr": 0.1}),
        ("adam", {"optimizer": "adam", "l1": 0.05, "lr": 0.01}),
    ):
        result = finetune(
            mlp(n_in=8, hidden=2, units=12, n_out=4, seed=1), (x, y), epochs=5, seed=0, **kwargs
        )
        kernel = np.array(result.model.get_layer(result.transfer.head[-1]).kernel)
        zeros[label] = np.count_nonzero(kernel == 0)
    assert zeros["ftrl"] > 0
    assert zeros["adam"] == 0
