"""The search space of `reuse tune`: `--space` parsing, its errors, and what a trial draws."""

from __future__ import annotations

import pytest

from reuse.core.errors import SpecError, UsageError
from reuse.tune.space import parse_space


class FakeTrial:
    """Records what the space asks of an Optuna trial and answers with the low end / first choice."""

    def __init__(self):
        self.asked = {}

    def suggest_float(self, name, low, high, log=False):
        self.asked[name] = ("float", low, high, log)
        return low

    def suggest_categorical(self, name, choices):
        self.asked[name] = ("categorical", list(choices))
        return choices[0]


def test_defaults_search_lr_around_the_suggestion_and_three_weight_decays():
    space = parse_space(None)
    assert space.texts() == ["lr=around:10", "wd=0.0001,1e-05,0.0"]
    assert space.needs_lr_find() and space.searched() == ["lr", "wd"]
    trial = FakeTrial()
    config = space.suggest(trial, {"adam": 2e-3}, "adam")
    assert trial.asked["lr"] == ("float", pytest.approx(2e-4), pytest.approx(2e-2), True)
    assert trial.asked["wd"] == ("categorical", [1e-4, 1e-5, 0.0])
    assert config == {"lr": pytest.approx(2e-4), "l2": 1e-4}


def test_ranges_choices_and_fixed_values():
    space = parse_space(
        ["lr=1e-4..1e-2", "wd=0", "dropout=0..0.5", "cut=hidden3,hidden4", "unfreeze=0,2,all"]
    )
    assert not space.needs_lr_find()
    assert space.searched() == ["lr", "dropout", "cut", "unfreeze"]
    trial = FakeTrial()
    config = space.suggest(trial, {}, "adam")
    assert trial.asked["lr"] == ("float", 1e-4, 1e-2, True)  # a log scale for rates
    assert trial.asked["dropout"] == ("float", 0.0, 0.5, False)  # linear for dropout
    assert trial.asked["unfreeze"] == ("categorical", ["top:0", "top:2", "all"])
    assert "wd" not in trial.asked and config["l2"] == 0.0  # one value fixes a dimension
    assert config["cut"] == "hidden3" and config["unfreeze"] == "top:0"
    assert space.combinations(None, "none") == [
        (c, u) for c in ("hidden3", "hidden4") for u in ("top:0", "top:2", "all")
    ]


def test_each_optimizer_gets_its_own_conditional_learning_rate():
    space = parse_space(["optimizer=adam:beta2=0.99,clipnorm=1,nesterov"])
    assert space.optimizers("adam") == ["adam:beta2=0.99,clipnorm=1", "nesterov"]
    trial = FakeTrial()
    config = space.suggest(trial, {"adam:beta2=0.99,clipnorm=1": 1e-3, "nesterov": 1e-2}, "adam")
    assert config["optimizer"] == "adam:beta2=0.99,clipnorm=1"
    assert "lr[adam:beta2=0.99,clipnorm=1]" in trial.asked


@pytest.mark.parametrize(
    "item, message",
    [
        ("speed=1..2", "unknown name 'speed'"),
        ("lr", "NAME=VALUES"),
        ("lr=1e-2..1e-4", "the low end must be below the high end"),
        ("wd=0..1e-3", "log scale, so the low end must be > 0"),
        ("dropout=0..1.5", "dropout lies in [0, 1)"),
        ("cut=a..b", "takes a list of choices, not a range"),
        ("unfreeze=two", "is not a number of layers"),
        ("dropout=around:3", "only lr can be `around`"),
        ("lr=around:1", "the factor must be > 1"),
        ("lr=fast", "'fast' is not a number"),
    ],
)
def test_bad_space_items_are_usage_errors_that_echo_them(item, message):
    with pytest.raises(UsageError) as err:
        parse_space([item])
    assert message in str(err.value)


def test_a_misspelt_name_gets_a_suggestion_and_a_bad_optimizer_its_own_error():
    with pytest.raises(UsageError, match="did you mean 'dropout'"):
        parse_space(["dropuot=0..0.3"])
    with pytest.raises(SpecError):
        parse_space(["optimizer=adamm"])
