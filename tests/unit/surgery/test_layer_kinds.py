"""The class-kind sets name real Keras classes and weights, and import without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reuse.surgery import layer_kinds
from tests.helpers import ROOT

SETS = [
    "RECURRENT",
    "CONV",
    "DEPTHWISE",
    "NORMALIZATION",
    "TRAINING_NOISE",
    "ACTIVATION",
    "SHAPE_PRESERVING",
    "TO_VECTOR",
]


@pytest.mark.parametrize("name", SETS)
def test_every_class_name_is_a_keras_layer(name):
    import keras

    for cls in getattr(layer_kinds, name):
        assert isinstance(getattr(keras.layers, cls, None), type), f"{name}: {cls}"


def test_kernel_weights_are_the_kernels_keras_creates():
    import keras

    layers = [
        keras.layers.Dense(2),
        keras.layers.Conv2D(2, 3),
        keras.layers.DepthwiseConv2D(3),
        keras.layers.SeparableConv2D(2, 3),
        keras.layers.Embedding(5, 2),
        keras.layers.LSTM(2),
        keras.layers.BatchNormalization(),
    ]
    shapes = [(None, 4), (None, 6, 6, 2), (None, 6, 6, 2), (None, 6, 6, 2), (None, 3)]
    shapes += [(None, 3, 4), (None, 4)]
    kernels, others = set(), set()
    for layer, shape in zip(layers, shapes, strict=True):
        layer.build(shape)
        for w in layer.weights:
            name = w.path.rsplit("/", 1)[-1]
            (kernels if name in layer_kinds.KERNEL_WEIGHTS else others).add(name)
    assert kernels == {
        "kernel",
        "depthwise_kernel",
        "pointwise_kernel",
        "embeddings",
        "recurrent_kernel",
    }
    assert others == {"bias", "gamma", "beta", "moving_mean", "moving_variance"}


def test_shape_preserving_holds_the_noise_and_activation_layers():
    assert layer_kinds.TRAINING_NOISE <= layer_kinds.SHAPE_PRESERVING
    assert layer_kinds.ACTIVATION <= layer_kinds.SHAPE_PRESERVING
    assert not layer_kinds.SHAPE_PRESERVING & (layer_kinds.CONV | layer_kinds.NORMALIZATION)


def test_kinds_grammar_and_fast_inspection_import_no_tensorflow():
    code = (
        "import sys\n"
        "import reuse.surgery.layer_kinds, reuse.surgery.layer_spec, reuse.inspection.fast\n"
        "heavy = {'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
