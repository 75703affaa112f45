"""The augmenter: an `AugmentSpec` made of Keras' own preprocessing layers, applied to batches.

    augmenter = build_augmenter("digits", input_shape=(784,), image_shape=(28, 28, 1), seed=1)
    xb_aug, yb_aug = augmenter(xb, yb, training=True)   # eager or inside a tf.function

Every image operation is a Keras layer (RandomTranslation, RandomRotation, RandomZoom,
RandomFlip, RandomShear, RandomCrop + Resizing, RandomErasing, RandomContrast,
RandomBrightness, RandomColorJitter, RandomElasticTransform, GaussianNoise, MixUp, CutMix);
this module only reshapes rows to images and back and converts labels. The layers are built
when the augmenter is, so their seed-generator variables exist before any tracing, and the
same seed gives the same sequence of augmented batches. Images are channels-last.

`views` makes K augmented copies of an array (the augmented feature cache stores them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from reuse.augment.spec import IMAGE_NAMES, AugmentSpec, parse_augment
from reuse.core.errors import SpecError, UsageError

_FLIP_MODE = {"horizontal": "horizontal", "vertical": "vertical", "both": "horizontal_and_vertical"}


def infer_value_range(x) -> tuple[float, float]:
    """The value range brightness, contrast, jitter, erase and noise assume for `x`.

    Returns:
        (0, 1) when every value of `x` lies in [0, 1]; (0, 255) when every value lies in
        [0, 255]; otherwise (min, max) of `x`. An empty array gives (0, 1).
    """
    x = np.asarray(x)
    if x.size == 0:
        return (0.0, 1.0)
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= 0 and hi <= 1:
        return (0.0, 1.0)
    if lo >= 0 and hi <= 255:
        return (0.0, 255.0)
    return (lo, hi)


def stream_seed(*key: int) -> int:
    """A seed in [0, 2**31) fixed by the integers `key` and unrelated to that of any other key
    (NumPy's SeedSequence hash): the first word of a random layer's SeedGenerator state."""
    return int(np.random.SeedSequence([int(k) % 2**32 for k in key]).generate_state(1)[0] % 2**31)


class Augmenter:
    """Callable that augments a batch of rows (and mixes labels for mixup / cutmix).

    Build it with `build_augmenter`. Attributes:
        spec: the AugmentSpec.
        input_shape: shape of one row, without the batch axis.
        image_shape: (H, W, C) the rows are viewed as, or None when no image op is on.
        value_range: (low, high) of the pixel values.
        num_classes: classes for one-hot labels (mixup / cutmix with integer labels).
        soft_labels: True when mixup or cutmix is on: training labels come back as float
            probabilities of shape (N, num_classes), so the loss must take probabilities
            (e.g. `keras.losses.CategoricalCrossentropy`), and validation labels should be
            converted the same way with `one_hot`.
        layers: the Keras layers, in the order they are applied.
    """

    def __init__(self, spec, input_shape, image_shape, value_range, num_classes, seed):
        import keras

        self.spec = spec
        self.input_shape = tuple(int(d) for d in input_shape)
        self.image_shape = image_shape
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.num_classes = num_classes
        self.seed = seed
        self.soft_labels = spec.batch_level
        self._row_size = math.prod(self.input_shape)
        self.layers: list = []
        self._mixer = None
        seeds = iter(range(seed, seed + 1000))
        for name, value in spec.items():
            if name in ("mixup", "cutmix"):
                continue
            self.layers.extend(self._make(keras, name, value, next(seeds)))
        if spec.mixup is not None:
            self._mixer = keras.layers.MixUp(alpha=spec.mixup, seed=next(seeds))
        if spec.cutmix is not None:  # the parser allows mixup or cutmix, not both
            # A fixed alpha: CutMix samples it from `factor`, so give the same value twice.
            self._mixer = keras.layers.CutMix(factor=(spec.cutmix, spec.cutmix), seed=next(seeds))

    def _make(self, keras, name: str, value, seed: int) -> list:
        L = keras.layers
        vr = self.value_range
        if name == "flip":
            return [L.RandomFlip(mode=_FLIP_MODE[value], seed=seed)]
        if name == "crop":
            h, w, _ = self.image_shape
            ch, cw = max(1, round(value * h)), max(1, round(value * w))
            return [L.RandomCrop(ch, cw, seed=seed), L.Resizing(h, w)]
        if name == "shift":
            return [L.RandomTranslation(value, value, seed=seed)]
        if name == "rotate":
            return [L.RandomRotation(value, seed=seed)]
        if name == "zoom":
            return [L.RandomZoom(value, seed=seed)]
        if name == "shear":
            return [L.RandomShear(x_factor=value, y_factor=value, seed=seed)]
        if name == "elastic":
            return [
                L.RandomElasticTransform(factor=(1.0, 1.0), scale=value, value_range=vr, seed=seed)
            ]
        if name == "brightness":
            return [L.RandomBrightness(value, value_range=vr, seed=seed)]
        if name == "contrast":
            return [L.RandomContrast(value, value_range=vr, seed=seed)]
        if name == "jitter":
            colour = self.image_shape[-1] == 3  # saturation and hue are defined for RGB only
            return [
                L.RandomColorJitter(
                    value_range=vr,
                    brightness_factor=value,
                    contrast_factor=value,
                    saturation_factor=(0.5 - value / 4, 0.5 + value / 4) if colour else None,
                    hue_factor=value / 4 if colour else None,
                    seed=seed,
                )
            ]
        if name == "erase":
            return [L.RandomErasing(factor=(value, value), value_range=vr, seed=seed)]
        if name == "noise":
            width = vr[1] - vr[0]
            noise = L.GaussianNoise(value, seed=seed)
            if width == 1:
                return [noise]
            # GaussianNoise takes stddev <= 1: add it on the range scaled to width 1.
            return [L.Rescaling(1.0 / width), noise, L.Rescaling(width)]
        raise AssertionError(name)  # parse_augment admits no other name

    def reseed(self, *key: int) -> None:
        """Put every random layer in the state fixed by (`self.seed`, *key), e.g. the epoch:
        what a run draws from then on depends on the key only, so a resumed run augments
        exactly as an uninterrupted one. Call it outside compiled functions.

        Each layer gets its own stream, `[stream_seed(seed, *key, layer), 0]`, as Keras
        seeds a SeedGenerator (`[seed, 0]`); every draw then moves the second word on by one.
        Streams that shared the first word and started one apart would overlap: layer i's
        draw j would repeat layer i+1's draw j-1, and a rotation would copy a shift's numbers.
        """
        import keras

        layers = [*self.layers, *([self._mixer] if self._mixer is not None else [])]
        for i, layer in enumerate(layers):
            for value in vars(layer).values():
                if isinstance(value, keras.random.SeedGenerator):
                    value.state.assign(
                        np.array([stream_seed(self.seed, *key, i), 0]).astype(value.state.dtype)
                    )

    def one_hot(self, labels):
        """Integer labels (N,) or (N, 1) as float32 one-hot (N, num_classes); float (N, C)
        labels are returned as float32 unchanged. Works on arrays and tensors.

        Raises:
            UsageError: integer labels and no `num_classes`.
        """
        from keras import ops

        labels = ops.convert_to_tensor(labels)
        if "int" in str(labels.dtype) or len(labels.shape) == 1:
            if self.num_classes is None:
                raise UsageError(
                    "mixup/cutmix need one-hot labels, and the labels are class numbers",
                    "pass num_classes to build_augmenter",
                )
            labels = ops.reshape(labels, (-1,))
            return ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        return ops.cast(labels, "float32")

    def __call__(self, xb, yb=None, training: bool = True):
        """Augment one batch.

        Args:
            xb: rows of shape (N, *input_shape), array or tensor; any float or int dtype.
            yb: labels (N,) int, (N, 1) int, or (N, C) one-hot/soft; None when not needed.
            training: a Python bool. False returns `(xb, yb)` untouched.

        Returns:
            (augmented rows, labels). Rows keep their shape, and their dtype when it is a
            float (integer rows come back float32). Labels are untouched unless mixup or
            cutmix is on; then they are mixed float32 probabilities (N, num_classes).

        Raises:
            UsageError: mixup/cutmix with `yb=None`, or integer labels and no num_classes.
        """
        if not training or (not self.layers and self._mixer is None):
            return xb, yb
        from keras import ops

        x = ops.convert_to_tensor(xb)
        dtype = x.dtype if "float" in str(x.dtype) else "float32"
        x = ops.cast(x, "float32")
        if self.image_shape is not None:
            x = ops.reshape(x, (-1, *self.image_shape))
        elif self._mixer is not None:  # MixUp wants rank 4: view each row as a 1 x D image
            x = ops.reshape(x, (-1, 1, self._row_size, 1))
        for layer in self.layers:
            x = layer(x, training=True)
        if self._mixer is not None:
            if yb is None:
                raise UsageError("mixup/cutmix mix labels too, and no labels were given", "pass yb")
            mixed = self._mixer({"images": x, "labels": self.one_hot(yb)}, training=True)
            x, yb = mixed["images"], mixed["labels"]
        x = ops.reshape(x, (-1, *self.input_shape))
        return ops.cast(x, dtype), yb


def build_augmenter(
    spec: AugmentSpec | str,
    input_shape: Sequence[int],
    image_shape: Sequence[int] | None = None,
    seed: int = 0,
    value_range: Sequence[float] = (0.0, 1.0),
    num_classes: int | None = None,
) -> Augmenter:
    """An `Augmenter` for rows of `input_shape`.

    Args:
        spec: an AugmentSpec or `--augment` text (see `AUGMENT_HELP`).
        input_shape: shape of one row, without the batch axis, e.g. (784,) or (28, 28, 1).
        image_shape: (H, W, C) to view each row as for the image augmentations, e.g.
            (28, 28, 1) for rows of 784; H*W*C must equal the row size. Defaults to
            `input_shape` when that is (H, W, C).
        seed: seeds every layer (layer i gets seed + i); the same seed gives the same
            sequence of augmented batches from a freshly built augmenter.
        value_range: (low, high) of pixel values, used by brightness, contrast, jitter,
            elastic, erase and noise; `infer_value_range(x)` picks (0, 1) or (0, 255).
        num_classes: classes for one-hot labels when mixup/cutmix meet integer labels.

    Raises:
        SpecError: a malformed spec (text, or an AugmentSpec with values out of range).
        UsageError: an image augmentation on rows that are not (H, W, C) and no
            `image_shape`; an `image_shape` whose size is not the row size; an empty or
            inverted value range.
    """
    # An AugmentSpec built by hand is checked as if it had been typed.
    spec = parse_augment(spec.canonical() if isinstance(spec, AugmentSpec) else spec)
    input_shape = tuple(int(d) for d in input_shape)
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise UsageError(
            f"value_range must be (low, high) with high > low. Received: {tuple(value_range)}",
            "e.g. (0, 1) or (0, 255)",
        )
    image = resolve_image_shape(spec, input_shape, image_shape)
    return Augmenter(spec, input_shape, image, (lo, hi), num_classes, int(seed))


def resolve_image_shape(spec: AugmentSpec, input_shape, image_shape=None):
    """The (H, W, C) the augmenter views rows of `input_shape` as, or None when `spec` has no
    image operation; checked without TensorFlow, so a run can refuse before it trains.

    Raises:
        UsageError: an image operation on rows that are not (H, W, C) and no `image_shape`, or
            an `image_shape` whose size is not the row size.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if image_shape is not None:
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise UsageError(
                f"--image-shape must be H,W,C. Received: {','.join(map(str, image_shape))}",
                "e.g. --image-shape 28,28,1",
            )
        if math.prod(image_shape) != math.prod(input_shape):
            raise UsageError(
                f"--image-shape {','.join(map(str, image_shape))} has "
                f"{math.prod(image_shape)} values, but each input row has "
                f"{math.prod(input_shape)} (shape {input_shape})",
                _suggest(input_shape),
            )
        return image_shape if spec.needs_images else None
    if not spec.needs_images:
        return None
    if len(input_shape) == 3:
        return input_shape
    image_ops = [n for n in spec.names if n in IMAGE_NAMES]
    listed = (
        ", ".join(image_ops[:-1]) + " and " + image_ops[-1] if len(image_ops) > 1 else image_ops[0]
    )
    raise UsageError(
        f"--augment {listed} work{'' if len(image_ops) > 1 else 's'} on images "
        "(height, width, channels), and each input "
        f"row has shape {input_shape}",
        _suggest(input_shape) + "; `noise` and `mixup` work on any input",
    )


def _suggest(input_shape) -> str:
    size = math.prod(input_shape)
    for channels in (1, 3):
        side = math.isqrt(size // channels)
        if side > 1 and side * side * channels == size:
            return f"give --image-shape H,W,C, e.g. --image-shape {side},{side},{channels}"
    if len(input_shape) == 2:
        return f"give --image-shape H,W,C, e.g. --image-shape {input_shape[0]},{input_shape[1]},1"
    return "give --image-shape H,W,C whose product is the row size"


def iter_views(
    x,
    spec: AugmentSpec | str,
    k: int,
    *,
    seed: int = 0,
    image_shape: Sequence[int] | None = None,
    value_range: Sequence[float] | None = None,
    batch_size: int = 256,
) -> Iterator[np.ndarray]:
    """An iterator over `k` augmented copies of the array `x`, one whole copy at a time.

    Same arguments and errors as `views`; the errors are raised by this call, before any
    copy is made. The augmentation runs in one `tf.function` over batches of
    `batch_size` rows; the result depends on `seed` and `batch_size`, not on anything else.
    """
    import tensorflow as tf

    x = np.asarray(x)
    if not isinstance(spec, AugmentSpec):
        spec = parse_augment(spec)
    if spec.batch_level:
        raise SpecError(
            f"--augment {spec}: mixup and cutmix mix rows and labels of a training batch, "
            "so they cannot be stored as views",
            f"make the views with `{spec.per_sample() or 'digits'}` and mix batches while training",
        )
    if not spec:
        raise SpecError(
            "views need an augmentation, and --augment is empty", "e.g. --augment digits"
        )
    if int(k) < 0 or int(batch_size) < 1:
        raise UsageError(
            f"views need k >= 0 and batch_size >= 1. Received: k={k}, batch_size={batch_size}"
        )
    if value_range is None:
        value_range = infer_value_range(x)
    augmenter = build_augmenter(spec, x.shape[1:], image_shape, seed, value_range)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    step = tf.function(
        lambda xb: augmenter(xb, training=True)[0],
        input_signature=[tf.TensorSpec((None, *x.shape[1:]), dtype)],
    )

    def generate():
        for _ in range(int(k)):
            out = np.empty(x.shape, dtype)
            for start in range(0, len(x), int(batch_size)):
                chunk = x[start : start + int(batch_size)].astype(dtype, copy=False)
                out[start : start + len(chunk)] = step(chunk).numpy()
            yield out

    return generate()


def views(
    x,
    spec: AugmentSpec | str,
    k: int,
    *,
    seed: int = 0,
    image_shape: Sequence[int] | None = None,
    value_range: Sequence[float] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """`k` augmented copies of the array `x`, shape (k, *x.shape).

    Args:
        x: rows (N, *row_shape), any numeric dtype; float dtypes are kept, others give float32.
        spec: an AugmentSpec or `--augment` text without mixup and cutmix.
        k: number of views (0 gives an empty (0, *x.shape) array).
        seed: the same seed (and batch_size) gives the same views.
        image_shape: (H, W, C) to view flat rows as images, as in `build_augmenter`.
        value_range: (low, high) of the values; None infers it with `infer_value_range(x)`.
        batch_size: rows augmented at once.

    Raises:
        SpecError: an empty spec, or one with mixup or cutmix (they mix rows and labels of
            a training batch; make views from `spec.per_sample()`).
        UsageError: as `build_augmenter`; k < 0 or batch_size < 1.
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    out = list(
        iter_views(
            x,
            spec,
            k,
            seed=seed,
            image_shape=image_shape,
            value_range=value_range,
            batch_size=batch_size,
        )
    )
    return np.stack(out) if out else np.empty((0, *x.shape), dtype)
