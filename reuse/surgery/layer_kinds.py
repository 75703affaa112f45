"""Kinds of Keras layers, by class name: the one list of which classes are recurrent,
convolutional, normalizing, noise-in-training, shape-preserving, and which weights are kernels.

Plain strings, no Keras import, so TensorFlow-free code (the fast inspector) can use them.
Compare with `type(layer).__name__` or a config's `class_name`:

    if type(layer).__name__ in TRAINING_NOISE: ...
"""

from __future__ import annotations

# Recurrent layers and cells: their weight layouts differ between frameworks (gate order).
RECURRENT = frozenset(
    {
        "LSTM",
        "GRU",
        "SimpleRNN",
        "RNN",
        "Bidirectional",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "LSTMCell",
        "GRUCell",
        "SimpleRNNCell",
        "StackedRNNCells",
    }
)
# Convolutions with one (k..., in, out) kernel.
CONV = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
    }
)
# Depthwise convolutions: a (k..., in, multiplier) kernel.
DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
# Normalizations with a scale (gamma) and an offset (beta).
NORMALIZATION = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization"})
# Layers that only add noise while training and are the identity at inference.
TRAINING_NOISE = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
    }
)
# Activation layers (the `activation=` argument of other layers is not a layer).
ACTIVATION = frozenset({"ReLU", "LeakyReLU", "ELU", "Softmax"})
# Layers whose output has the shape of their one input and that own no weights.
SHAPE_PRESERVING = (
    TRAINING_NOISE
    | ACTIVATION
    | {"Rescaling", "ActivityRegularization", "Identity", "UnitNormalization", "Masking"}
)
# Layers that turn a feature map into one vector per sample.
TO_VECTOR = frozenset(
    {
        "Flatten",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
    }
)
# Weight names (the last part of a variable's path) that are kernels, not biases or statistics.
KERNEL_WEIGHTS = frozenset(
    {"kernel", "depthwise_kernel", "pointwise_kernel", "embeddings", "recurrent_kernel"}
)
