"""The encoder a pretraining run trains and saves as the base: Dense layers, or conv blocks.

One builder for both commands: the autoencoder's encoder and the siamese network's tower are
the same stack, so `reuse pretrain pairs --layers 100,100` and `reuse pretrain autoencoder
--layers 100,100` write bases of the same shape.

- Dense (`arch="dense"`): rows are flattened; layer k is `Dense(layers[k], activation,
  he_normal)` named `hidden{k+1}`, as in the project's MNIST base (`models/mnist_0to4.keras`).
- Conv (`arch="conv"`): block k is `Conv2D(layers[k], 3, same, activation, he_normal)`
  named `conv{k+1}` and `MaxPooling2D(2, same)` named `pool{k+1}`. Flat rows are viewed as
  `image_shape` by a first `Reshape` layer (`to_image`), so the base takes the rows as they are.

`decoder_block` mirrors one encoder block (Dense, or a stride-2 `Conv2DTranspose` cropped to
the block's input size) for the autoencoder.
"""

from __future__ import annotations

import math

import numpy as np

from reuse.core.errors import UsageError


def prepare_rows(x: np.ndarray, options) -> tuple[np.ndarray, tuple, str]:
    """The rows as the encoder takes them, its input shape, and the architecture.

    Args:
        x: the data, shape (N, ...) float.
        options: a checked `PretrainOptions` (its `arch`, `image_shape`).

    Returns:
        (x reshaped, per-row input shape, "dense" or "conv"). Dense: (N, D) rows. Conv:
        (N, H, W, C) images when the data holds images ((N, H, W) get a channel), or flat
        (N, D) rows that the encoder's `to_image` layer views as `image_shape`.

    Raises:
        UsageError: conv without images or --image-shape; --image-shape of another size.
    """
    x = np.asarray(x, dtype=np.float32)
    row = tuple(x.shape[1:])
    arch = options.arch
    if arch == "auto":
        arch = "conv" if options.image_shape is not None or len(row) == 3 else "dense"
    if arch == "dense":
        return x.reshape(len(x), -1), (int(np.prod(row)),), arch
    if options.image_shape is not None:
        shape = tuple(options.image_shape)
        if int(np.prod(shape)) != int(np.prod(row)):
            raise UsageError(
                f"--image-shape {','.join(map(str, shape))} holds {int(np.prod(shape))} values, and "
                f"each row of the data holds {int(np.prod(row))} (shape {row})",
                "give the H,W,C of the rows, e.g. 28,28,1 for 784 values",
            )
        if row == shape:
            return x, shape, arch
        return x.reshape(len(x), -1), (int(np.prod(row)),), arch
    if len(row) == 3:
        return x, row, arch
    if len(row) == 2:
        return x[..., None], (*row, 1), arch
    raise UsageError(
        f"a convolutional encoder needs images, and the rows are vectors of shape {row}",
        "pass --image-shape H,W,C (e.g. 28,28,1), or use --arch dense",
    )


def encoder_blocks(options, input_shape: tuple, arch: str) -> list[list]:
    """The encoder's layers, one list per block (bottom first), not yet called.

    Block 1 of a conv encoder on flat rows starts with the `to_image` Reshape.
    """
    import keras

    blocks = []
    for k, units in enumerate(options.layers, start=1):
        if arch == "dense":
            block = [
                keras.layers.Dense(
                    units,
                    activation=options.activation,
                    kernel_initializer="he_normal",
                    name=f"hidden{k}",
                )
            ]
        else:
            block = [
                keras.layers.Conv2D(
                    units,
                    3,
                    padding="same",
                    activation=options.activation,
                    kernel_initializer="he_normal",
                    name=f"conv{k}",
                ),
                keras.layers.MaxPooling2D(2, padding="same", name=f"pool{k}"),
            ]
        blocks.append(block)
    if arch == "conv" and len(input_shape) == 1:
        blocks[0].insert(0, keras.layers.Reshape(tuple(options.image_shape), name="to_image"))
    return blocks


def chain(layers, x):
    """`x` through `layers` in order."""
    for layer in layers:
        x = layer(x)
    return x


def build_encoder(blocks: list[list], input_shape: tuple, name: str = "encoder"):
    """A functional model of `blocks` on an `Input(input_shape)` (the layers are shared)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block in blocks:
        x = chain(block, x)
    return keras.Model(inputs, x, name=name)


def block_input_shapes(blocks: list[list], input_shape: tuple) -> list[tuple]:
    """The per-row shape entering each block (bottom first)."""
    import keras

    shapes, x = [], keras.Input(shape=input_shape)
    for block in blocks:
        shapes.append(tuple(x.shape[1:]))
        x = chain(block, x)
    return shapes


def decoder_block(arch: str, index: int, target: tuple, activation: str | None, image_shape=None):
    """Layers that map block `index`'s output back to `target`, the shape entering it.

    Dense: one Dense of prod(target) units named `decoder{index}`. Conv: a stride-2
    `Conv2DTranspose` (named `deconv{index}`) to the channels of the target image, cropped when
    the size was odd (`crop{index}`), then flattened back (`to_rows`) when `target` is flat.
    """
    import keras

    if arch == "dense":
        return [
            keras.layers.Dense(int(np.prod(target)), activation=activation, name=f"decoder{index}")
        ]
    image = tuple(image_shape) if len(target) == 1 else target
    h, w, c = image
    layers = [
        keras.layers.Conv2DTranspose(
            c, 3, strides=2, padding="same", activation=activation, name=f"deconv{index}"
        )
    ]
    dh, dw = 2 * math.ceil(h / 2) - h, 2 * math.ceil(w / 2) - w
    if dh or dw:
        layers.append(keras.layers.Cropping2D(((0, dh), (0, dw)), name=f"crop{index}"))
    if len(target) == 1:
        layers.append(keras.layers.Reshape(target, name="to_rows"))
    return layers
