"""`--map` rules: the forms they come in, which one wins, dropping, and the errors."""

from __future__ import annotations

import json

import pytest

from reuse.core.errors import UsageError
from reuse.weights.mapping import (
    apply_mapping,
    compile_layers,
    parse_mapping,
    selected,
    split_name,
)


def test_every_form_gives_the_same_rules(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"fc1": "hidden1"}))
    (tmp_path / "m.toml").write_text('[map]\nfc1 = "hidden1"\n')
    forms = ["fc1=hidden1", ["fc1 = hidden1"], [("fc1", "hidden1")], {"fc1": "hidden1"}]
    forms += [str(tmp_path / "m.json"), [tmp_path / "m.toml"]]
    for form in forms:
        rules = parse_mapping(form)
        assert [(p.pattern, dst) for p, dst in rules] == [("fc1", "hidden1")], form
    assert parse_mapping(None) == []


def test_whole_name_rules_win_and_may_rename_the_parameter():
    rules = parse_mapping([r"fc(\d)=hidden\1", "out.weight=output/kernel"])
    assert apply_mapping("fc2.weight", "fc2", "weight", rules) == ("hidden2", "weight", True)
    assert apply_mapping("out.weight", "out", "weight", rules) == ("output", "kernel", True)
    assert apply_mapping("other.bias", "other", "bias", rules) == ("other", "bias", False)


def test_an_empty_destination_drops_the_tensor():
    rules = parse_mapping(["aux.*="])
    assert apply_mapping("aux.fc.weight", "aux.fc", "weight", rules) == (None, None, True)


def test_split_name_at_the_last_separator():
    assert split_name("model.fc1.weight") == ("model.fc1", "weight")
    assert split_name("hidden1/kernel") == ("hidden1", "kernel")
    assert split_name("step") == ("step", "")


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        ("fc1", "--map rules are written src=dst"),
        ("fc1(=x", "is not a valid regex"),
        ("missing.json", "cannot be read"),
    ],
)
def test_bad_rules(tmp_path, monkeypatch, mapping, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=needle):
        parse_mapping(mapping)


def test_bad_mapping_files(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "nums.json").write_text('{"a": 1}')
    with pytest.raises(UsageError, match="is not valid JSON"):
        parse_mapping(str(tmp_path / "bad.json"))
    with pytest.raises(UsageError, match=r'must hold \{"src": "dst", ...\}'):
        parse_mapping(str(tmp_path / "nums.json"))


def test_layer_selector_matches_the_path_or_its_last_part():
    sel = compile_layers("hidden[12]")
    assert selected(sel, "hidden1") and selected(sel, "outer/hidden2")
    assert not selected(sel, "hidden3")
    assert selected(None, "anything")
    with pytest.raises(UsageError, match="--layers is not a valid regex"):
        compile_layers("hidden[")
