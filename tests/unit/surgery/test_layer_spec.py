"""The one layer-list grammar of `--head` and `--arch`: every alias works through both entry
points, specs round-trip, and both report bad specs the same way."""

from __future__ import annotations

import pytest

from reuse.core.errors import SpecError
from reuse.surgery.heads import build_layers
from reuse.surgery.layer_spec import (
    ACTIVATION_ALIASES,
    ARCH_KINDS,
    GRAMMAR_HELP,
    HEAD_KINDS,
    KIND_ALIASES,
    LayerSpec,
    build_from_spec,
    format_layer_spec,
    parse_arch_spec,
    parse_layer_spec,
)

# alias token, the same layer written with canonical names, the Keras class it builds
KIND_CASES = [
    ("bn", "batchnorm", "BatchNormalization"),
    ("batchnormalization", "batchnorm", "BatchNormalization"),
    ("BN:eps=1e-5", "batchnorm:eps=1e-5", "BatchNormalization"),
    ("globalaveragepooling", "gap", "GlobalAveragePooling2D"),
    ("alpha_dropout:0.1", "alphadropout:0.1", "AlphaDropout"),
    ("gaussian_noise:0.2", "gaussiannoise:0.2", "GaussianNoise"),
    ("noise:0.2", "gaussiannoise:0.2", "GaussianNoise"),
]
# alias token, canonical token, the Keras activation function's name
ACTIVATION_CASES = [
    ("dense:3:silu", "dense:3:swish", "silu"),
    ("dense:3:leakyrelu", "dense:3:leaky_relu", "leaky_relu"),
    ("dense:3:none", "dense:3:linear", "linear"),
    ("dense:3:identity", "dense:3:linear", "linear"),
    ("activation:silu", "activation:swish", "silu"),
    ("activation:LeakyReLU", "activation:leaky_relu", "leaky_relu"),
]
INPUT = (4, 4, 3)  # a feature map, so gap is a 2D pooling in both entry points


def test_the_cases_cover_every_alias():
    covered = {case[0].split(":")[0].lower() for case in KIND_CASES}
    assert covered == set(KIND_ALIASES)
    covered = {case[0].split(":")[-1].lower() for case in ACTIVATION_CASES}
    assert covered == set(ACTIVATION_ALIASES)


def _head_layer(token):
    return build_layers(parse_layer_spec(token), input_shape=INPUT)[0]


def _arch_layer(token):
    model = build_from_spec("input:4x4x3," + token)
    return model.layers[-1]


@pytest.mark.parametrize(("alias", "canonical", "cls"), KIND_CASES)
def test_layer_alias_through_head_and_arch(alias, canonical, cls):
    assert parse_layer_spec(alias) == parse_layer_spec(canonical)
    assert parse_arch_spec("input:8," + alias)[1] == parse_arch_spec("input:8," + canonical)[1]
    head, arch = _head_layer(alias), _arch_layer(alias)
    assert type(head).__name__ == cls and type(arch).__name__ == cls
    if cls == "BatchNormalization" and "eps" in alias:
        assert head.epsilon == pytest.approx(1e-5) and arch.epsilon == pytest.approx(1e-5)


@pytest.mark.parametrize(("alias", "canonical", "function"), ACTIVATION_CASES)
def test_activation_alias_through_head_and_arch(alias, canonical, function):
    assert parse_layer_spec(alias) == parse_layer_spec(canonical)
    assert parse_arch_spec("input:8," + alias)[1] == parse_arch_spec("input:8," + canonical)[1]
    for layer in (_head_layer(alias), _arch_layer(alias)):
        assert layer.activation.__name__ == function


def test_head_names_and_arch_names():
    head = build_layers(parse_layer_spec("dense:4:relu,bn,dense:2:name=last"), input_shape=(8,))
    assert [layer.name for layer in head] == ["head_dense_1", "head_batchnorm_1", "last"]
    model = build_from_spec("input:8,dense:4:relu,bn,dense:2:name=last")
    assert [layer.name for layer in model.layers[1:]] == ["dense_1", "batchnorm_1", "last"]
    assert model.name == "imported" and model.layers[0].name == "input"


def test_arch_builds_every_kind_with_its_options():
    model = build_from_spec(
        "input:12x12x2,conv2d:4:3:relu:stride=1:padding=same:name=c1,bn:eps=1e-5:momentum=0.9,"
        "depthwise2d:3:mult=2,maxpool2d:2,avgpool2d,gap,dropout:0.1,alphadropout:0.1,"
        "gaussiannoise:0.1,dense:5:selu,activation:softmax"
    )
    layers = {type(layer).__name__: layer for layer in model.layers}
    assert layers["Conv2D"].name == "c1" and layers["Conv2D"].padding == "same"
    assert layers["BatchNormalization"].momentum == pytest.approx(0.9)
    assert layers["DepthwiseConv2D"].depth_multiplier == 2
    assert model.output_shape == (None, 5)
    seq = build_from_spec("input:10,embedding:50:8,conv1d:4:3:padding=causal,gap,dense:2")
    assert seq.output_shape == (None, 2)
    assert type(seq.layers[-2]).__name__ == "GlobalAveragePooling1D"


def test_specs_round_trip_through_text():
    text = (
        "conv2d:8:3:relu:stride=2:padding=same:name=c,batchnorm:eps=1e-05:momentum=0.9,"
        "depthwise2d:3:linear:mult=2,maxpool2d:3,avgpool2d,gap,embedding:10:4,"
        "dense:5:softmax:name=out,dropout:0.25,gaussiannoise:0.1,activation:elu"
    )
    specs = parse_layer_spec(text, kinds=ARCH_KINDS)
    assert format_layer_spec(specs) == text
    assert specs[0] == LayerSpec(
        "conv2d", units=8, activation="relu", kernel=3, stride=2, padding="same", name="c"
    )
    assert repr(specs[5]) == "LayerSpec(kind='gap')"


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("conv2d:8:3", "--head does not take 'conv2d' layers", "--head takes: dense"),
        ("input:8,dense:3", "input:SHAPE is the first layer of --arch only", ""),
        ("dense:3:padding=same", "dense has no option 'padding'", "valid: name"),
        ("dense:3:name=a:name=b", "`name` is given twice", ""),
        ("batchnorm:eps=0", "`eps` must be > 0", ""),
        ("dense:3:relu6:name=", "name= is empty", ""),
    ],
)
def test_head_errors(text, needle, hint):
    with pytest.raises(SpecError) as err:
        parse_layer_spec(text)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("dense:3", "an --arch spec starts with the input shape", "input:784"),
        ("input:0,dense:3", "bad input shape in --arch", "input:28x28x1"),
        ("input:8,dnese:3", "unknown --arch layer 'dnese'", "did you mean 'dense'"),
        ("input:8,dense:3:reLu2", "unknown activation 'reLu2'", "did you mean 'relu'"),
        ("input:8,conv2d:4", "needs FILTERS, KERNEL", "conv2d:FILTERS:KERNEL"),
        ("input:8,conv2d:4:3:padding=full", "padding must be same, valid or causal", ""),
        ("input:8,dropout:1.5", "`RATE` must be < 1", ""),
        ("input:8,input:3", "first layer of --arch only", ""),
    ],
)
def test_arch_errors(text, needle, hint):
    with pytest.raises(SpecError) as err:
        parse_arch_spec(text)
    assert needle in err.value.message
    assert hint in (err.value.hint or "")


def test_arch_layers_that_do_not_fit_are_a_spec_error():
    with pytest.raises(
        SpecError, match=r"bad --arch layer 'conv2d:4:3:linear' on input shape \(8,\)"
    ):
        build_from_spec("input:8,conv2d:4:3")


def test_arch_keeps_old_spellings():
    # strings that worked before the grammar was shared: a trailing comma, 28*28, mixed case
    shape, specs = parse_arch_spec("input:28*28,Dense:300:relu:name=hidden1,dense:10:softmax,")
    assert shape == (28, 28) and [s.kind for s in specs] == ["dense", "dense"]
    assert parse_arch_spec("input:8,dense:3:relu6")[1][0].activation == "relu6"


def test_help_lists_every_head_kind_and_alias():
    for kind in HEAD_KINDS:
        assert f"\n  {kind}" in GRAMMAR_HELP
    flat = " ".join(GRAMMAR_HELP.split())
    for alias in (*KIND_ALIASES, *ACTIVATION_ALIASES):
        assert alias in flat
