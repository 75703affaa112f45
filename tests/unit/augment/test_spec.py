"""`--augment` parsing: every name, presets, canonical strings, and the errors (no TensorFlow)."""

from __future__ import annotations

import pytest

from reuse.augment.spec import AUGMENT_HELP, NAMES, PRESETS, AugmentSpec, parse_augment
from reuse.core.errors import SpecError, UsageError

DEFAULTS = {
    "flip": "horizontal",
    "crop": 0.9,
    "shift": 0.1,
    "rotate": 0.05,
    "zoom": 0.1,
    "shear": 0.1,
    "elastic": 1.0,
    "brightness": 0.2,
    "contrast": 0.2,
    "jitter": 0.2,
    "erase": 0.5,
    "noise": 0.05,
    "mixup": 0.2,
    "cutmix": 1.0,
}


def test_every_name_is_covered_here():
    assert set(DEFAULTS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_name_alone_takes_its_default(name):
    spec = parse_augment(name)
    assert spec.to_dict() == {name: DEFAULTS[name]}
    assert f"[{DEFAULTS[name]}]" in AUGMENT_HELP.split(f"  {name}:")[1].splitlines()[0]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "flip"])
def test_name_with_a_value(name):
    spec = parse_augment(f"{name}:0.3")
    assert getattr(spec, name) == pytest.approx(0.3)
    assert spec.canonical() == f"{name}:0.3"


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "both", "BOTH"])
def test_flip_modes(mode):
    assert parse_augment(f"flip:{mode}").flip == mode.lower()


def test_issue_example_and_canonical_order():
    spec = parse_augment("zoom:0.08, rotate:0.04 ,shift:0.08")
    assert spec == AugmentSpec(shift=0.08, rotate=0.04, zoom=0.08)
    assert spec.canonical() == "shift:0.08,rotate:0.04,zoom:0.08"
    assert str(spec) == spec.canonical()


@pytest.mark.parametrize("name", PRESETS)
def test_presets_expand_exactly_as_the_help_says(name):
    assert parse_augment(name) == parse_augment(PRESETS[name])
    assert f"{name:8} = {PRESETS[name]}" in AUGMENT_HELP


def test_digits_preset_is_the_issue_recipe():
    assert parse_augment("digits").canonical() == "shift:0.08,rotate:0.04,zoom:0.08"


def test_explicit_item_overrides_a_preset_wherever_it_stands():
    before = parse_augment("zoom:0.2,digits,erase")
    after = parse_augment("digits,zoom:0.2,erase")
    assert before == after
    assert before.to_dict() == {"shift": 0.08, "rotate": 0.04, "zoom": 0.2, "erase": 0.5}


@pytest.mark.parametrize(
    "text",
    [
        "digits,erase:0.25,flip:both",
        "noise:0.123456789",
        "mixup:0.4",
        "crop:0.75,cutmix",
        "shear:0.2,elastic:0.5,brightness,contrast:0.1,jitter:0.3,noise:0.2",
        "natural",
    ],
)
def test_round_trips_through_string_and_dict(text):
    spec = parse_augment(text)
    assert parse_augment(spec.canonical()) == spec
    assert AugmentSpec.from_dict(spec.to_dict()) == spec
    assert AugmentSpec.parse(text) == spec


@pytest.mark.parametrize("text", [None, "", "  ", "none", "NONE", "off"])
def test_empty_spec(text):
    spec = parse_augment(text)
    assert not spec
    assert spec.canonical() == "none"
    assert spec.to_dict() == {}
    assert parse_augment(spec.canonical()) == spec


def test_properties():
    spec = parse_augment("noise,mixup")
    assert spec.names == ["noise", "mixup"]
    assert not spec.needs_images and spec.batch_level
    assert spec.per_sample() == AugmentSpec(noise=0.05)
    assert parse_augment("shift,cutmix").needs_images
    assert not parse_augment("digits").batch_level


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(SpecError) as err:
        parse_augment("shfit:0.1")
    assert isinstance(err.value, UsageError)
    assert "shfit" in err.value.message
    assert "'shift'" in err.value.hint
    assert "digits" in err.value.hint  # presets are listed too


def test_unknown_flip_mode_suggests():
    with pytest.raises(SpecError) as err:
        parse_augment("flip:horizontl")
    assert "'horizontal'" in err.value.hint


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("shift:2", ["shift", "<= 1", "shift:2"]),
        ("shift:0", ["shift", "> 0"]),
        ("rotate:0.6", ["rotate", "<= 0.5"]),
        ("crop:1", ["crop", "< 1"]),
        ("zoom:-0.1", ["zoom", "> 0"]),
        ("noise:lots", ["noise", "must be a number", "noise:lots"]),
        ("mixup:nan", ["mixup", "finite"]),
        ("erase:1.5", ["erase", "<= 1"]),
    ],
)
def test_bad_values(text, words):
    with pytest.raises(SpecError) as err:
        parse_augment(text)
    for word in words:
        assert word in str(err.value)
    assert err.value.hint
    name = text.split(":")[0]
    assert f"{name}=" not in str(err.value)  # this grammar writes name:value


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("digits:1", "takes no value"),
        ("shift,shift:0.2", "given twice"),
        ("shift,,zoom", "empty item"),
        ("shift:", "has no value"),
        ("mixup,cutmix", "give one"),
    ],
)
def test_malformed_specs(text, word):
    with pytest.raises(SpecError) as err:
        parse_augment(text)
    assert word in err.value.message
    assert err.value.hint


def test_presets_given_twice_or_clashing_are_refused_not_resolved_by_order():
    """`digits,digits` names a preset twice, and `light,digits` gives `shift` and `zoom` two
    values: both used to parse, the clash silently won by whichever preset came last, so
    `light,digits` and `digits,light` were different specs."""
    with pytest.raises(SpecError, match="`digits` is given twice"):
        parse_augment("digits,digits")
    for text in ("light,digits", "digits,light"):
        with pytest.raises(SpecError, match="set `shift`, `zoom` to different values") as err:
            parse_augment(text)
        assert parse_augment(err.value.hint.split("--augment ")[1]).shift is not None
    both = "shift:0.1,zoom:0.1"
    assert parse_augment(f"light,digits,{both}") == parse_augment(f"digits,light,{both}")
    fixed = "rotate:0.05,zoom:0.15,contrast:0.3"  # natural and strong agree on flip and shift
    assert parse_augment(f"natural,strong,{fixed}") == parse_augment(f"strong,natural,{fixed}")


def test_from_dict_checks_values():
    with pytest.raises(SpecError):
        AugmentSpec.from_dict({"shift": 3})


def test_spec_imports_no_tensorflow(tmp_path):
    from tests.helpers import shell

    result = shell(
        "python -c \"import sys, reuse.augment as a; a.parse_augment('digits'); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\"",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
