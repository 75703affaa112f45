"""`--augment SPEC`: which data augmentations to apply, parsed and checked without TensorFlow.

A spec is a comma-separated list of `NAME:VALUE`, `NAME` (its default value) or a preset
name, e.g. `shift:0.08,rotate:0.04,zoom:0.08` or `digits,erase:0.25`. `AugmentSpec` holds
the result, one field per augmentation, and round-trips to a canonical string (for cache
fingerprints and pipeline records) and to a dict. `reuse.augment.pipeline` turns it into
Keras preprocessing layers; this module imports no TensorFlow, so `AUGMENT_HELP` is free
to use in `--help`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reuse.core import spec_grammar as _spec
from reuse.core.errors import SpecError

FLIP_MODES = ("horizontal", "vertical", "both")

# name -> (default, lo, hi, lo_open, hi_open, example, what the value means).
# Order is the order the pipeline applies them in, and the canonical order.
_NUMERIC = {
    "crop": (0.9, 0, 1, True, True, "0.9", "fraction of height and width kept"),
    "shift": (0.1, 0, 1, True, False, "0.08", "fraction of height and width"),
    "rotate": (0.05, 0, 0.5, True, False, "0.04", "fraction of a full turn"),
    "zoom": (0.1, 0, 1, True, False, "0.08", "fraction of the size, in or out"),
    "shear": (0.1, 0, 1, True, False, "0.1", "fraction of the width/height sheared over"),
    "elastic": (1.0, 0, 1, True, False, "0.5", "largest distortion scale"),
    "brightness": (0.2, 0, 1, True, False, "0.2", "fraction of the value range"),
    "contrast": (0.2, 0, 1, True, False, "0.2", "fraction"),
    "jitter": (0.2, 0, 1, True, False, "0.2", "colour jitter strength"),
    "erase": (0.5, 0, 1, True, False, "0.5", "probability an image gets a patch erased"),
    "noise": (0.05, 0, 1, True, False, "0.05", "Gaussian stddev, fraction of the value range"),
    "mixup": (0.2, 0, 1, True, False, "0.2", "Beta(alpha, alpha) of the mixing weight"),
    "cutmix": (1.0, 0, 1, True, False, "1.0", "Beta(alpha, alpha) of the patch area"),
}
NAMES = ("flip", *_NUMERIC)
# Augmentations that need each row to be an image (height, width, channels).
IMAGE_NAMES = frozenset(NAMES) - {"noise", "mixup"}
# Augmentations that mix rows (and their labels) within a batch.
BATCH_NAMES = frozenset({"mixup", "cutmix"})

PRESETS = {
    "light": "shift:0.05,zoom:0.05",
    "digits": "shift:0.08,rotate:0.04,zoom:0.08",
    "natural": "flip:horizontal,shift:0.1,rotate:0.03,zoom:0.1,contrast:0.2",
    "strong": (
        "flip:horizontal,shift:0.1,rotate:0.05,zoom:0.15,brightness:0.2,contrast:0.3,erase:0.5"
    ),
}

AUGMENT_HELP = """\
--augment NAME[:VALUE],...   (training only; `NAME` alone takes the default in brackets)
  flip:MODE     horizontal | vertical | both             [horizontal]
  crop:F        random crop keeping F of height and width, resized back   [0.9]
  shift:F       translate up to ±F of height and width   [0.1]
  rotate:F      rotate up to ±F of a full turn           [0.05]
  zoom:F        zoom in or out up to ±F                  [0.1]
  shear:F       shear up to ±F of the width / height     [0.1]
  elastic:S     elastic distortion of scale up to S      [1.0]
  brightness:F  brightness ±F of the value range         [0.2]
  contrast:F    contrast ×(1±F)                          [0.2]
  jitter:F      colour jitter: brightness, contrast F; saturation, hue on RGB  [0.2]
  erase:P       erase a random patch with probability P (cutout)  [0.5]
  noise:S       Gaussian noise, stddev S of the value range (any input)       [0.05]
  mixup:A       mix pairs of rows and labels, weight ~ Beta(A, A) (any input)  [0.2]
  cutmix:A      paste a patch of another image, area ~ Beta(A, A)             [1.0]
Presets (combine with other items; an explicit item overrides the preset's value):
  light    = shift:0.05,zoom:0.05
  digits   = shift:0.08,rotate:0.04,zoom:0.08
  natural  = flip:horizontal,shift:0.1,rotate:0.03,zoom:0.1,contrast:0.2
  strong   = flip:horizontal,shift:0.1,rotate:0.05,zoom:0.15,brightness:0.2,contrast:0.3,erase:0.5
Image augmentations need rows shaped (H, W, C); flat rows need --image-shape H,W,C.
mixup or cutmix (one of them) makes soft labels: the loss takes probabilities.
`none` turns augmentation off.
Examples: digits   shift:0.08,rotate:0.04,zoom:0.08   natural,mixup:0.2   noise:0.1"""


@dataclass(frozen=True)
class AugmentSpec:
    """Which augmentations to apply and how strongly; None means off.

    Fields are in the order the pipeline applies them: geometry (flip, crop, shift, rotate,
    zoom, shear, elastic), then colour (brightness, contrast, jitter), then erase and noise,
    then the batch-level mixup and cutmix. Units are those of `AUGMENT_HELP`.
    """

    flip: str | None = None
    crop: float | None = None
    shift: float | None = None
    rotate: float | None = None
    zoom: float | None = None
    shear: float | None = None
    elastic: float | None = None
    brightness: float | None = None
    contrast: float | None = None
    jitter: float | None = None
    erase: float | None = None
    noise: float | None = None
    mixup: float | None = None
    cutmix: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> AugmentSpec:
        """Same as `parse_augment`."""
        return parse_augment(text)

    @classmethod
    def from_dict(cls, values: dict) -> AugmentSpec:
        """The spec of `to_dict()`'s output (values are checked as in a spec string).

        Raises:
            SpecError: an unknown name or a value out of range.
        """
        items = [f"{name}:{value}" for name, value in (values or {}).items()]
        return parse_augment(",".join(items))

    def items(self) -> list[tuple[str, str | float]]:
        """(name, value) of every augmentation that is on, in pipeline order."""
        return [(n, getattr(self, n)) for n in NAMES if getattr(self, n) is not None]

    def to_dict(self) -> dict[str, str | float]:
        """`{name: value}` of the augmentations that are on, in pipeline order."""
        return dict(self.items())

    def canonical(self) -> str:
        """The one string for this spec, e.g. `shift:0.08,rotate:0.04` (`none` when empty).

        `parse_augment(spec.canonical()) == spec`; two specs that parse to the same thing
        (`digits` and `zoom:0.08,shift:0.08,rotate:0.04`) give the same string.
        """
        if not self:
            return "none"
        return ",".join(f"{n}:{_format(v)}" for n, v in self.items())

    def __str__(self) -> str:
        return self.canonical()

    def __bool__(self) -> bool:
        return bool(self.items())

    @property
    def names(self) -> list[str]:
        """Names of the augmentations that are on, in pipeline order."""
        return [n for n, _ in self.items()]

    @property
    def needs_images(self) -> bool:
        """True when an augmentation needs rows shaped (height, width, channels)."""
        return any(n in IMAGE_NAMES for n in self.names)

    @property
    def batch_level(self) -> bool:
        """True when mixup or cutmix is on: rows and labels are mixed, labels become soft."""
        return any(n in BATCH_NAMES for n in self.names)

    def per_sample(self) -> AugmentSpec:
        """This spec without mixup and cutmix (what views and test-time augmentation use)."""
        return dataclasses.replace(self, mixup=None, cutmix=None)


def parse_augment(text: str | None) -> AugmentSpec:
    """Parse `--augment`: comma-separated `NAME:VALUE`, `NAME` or preset names.

    Args:
        text: e.g. `shift:0.08,rotate:0.04,zoom:0.08`, `digits,erase:0.25`, `flip:both`.
            None, "" and `none` give an empty spec (no augmentation).

    Returns:
        AugmentSpec. A preset expands to its items (`PRESETS`); an item given explicitly
        overrides a preset's value for the same name, wherever it stands in the list.

    Raises:
        SpecError: an unknown name (with close spellings), a value out of range or not a
            number, a value given to a preset, an empty item, a name given twice, or both
            mixup and cutmix.
    """
    text = (text or "").strip()
    if text.lower() in ("", "none", "off"):
        return AugmentSpec()
    explicit: dict[str, str | float] = {}
    presets: dict[str, dict[str, str | float]] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise SpecError(
                f"--augment has an empty item. Received: {text}",
                "separate items with single commas, e.g. --augment shift:0.08,zoom:0.08",
            )
        name, colon, value = (part.strip() for part in item.partition(":"))
        name = name.lower()
        if not name:
            raise SpecError(
                f"--augment: an item has no name. Received: {item}",
                "write NAME:VALUE, e.g. --augment shift:0.08; names: " + ", ".join(NAMES),
            )
        if name in PRESETS:
            if colon:
                raise SpecError(
                    f"--augment: the preset `{name}` takes no value. Received: {item}",
                    f"write `{name}` alone; it means {PRESETS[name]}",
                )
            if name in presets:
                raise SpecError(
                    f"--augment: `{name}` is given twice. Received: {text}", "give each name once"
                )
            presets[name] = _parse_items(PRESETS[name])
            continue
        if name in explicit:
            raise SpecError(
                f"--augment: `{name}` is given twice. Received: {text}", "give each name once"
            )
        explicit[name] = _value(name, value if colon else None, item)
    # Presets that set one name to different values would make the spec depend on their order.
    preset: dict[str, str | float] = {}
    clash: dict[str, str | float] = {}
    for items in presets.values():
        for key, value in items.items():
            if key in preset and preset[key] != value and key not in explicit:
                clash[key] = value
            preset[key] = value
    if clash:
        raise SpecError(
            f"--augment: the presets in {text} set {', '.join(f'`{k}`' for k in clash)} "
            "to different values, so the result would depend on their order",
            "give the value yourself, e.g. --augment "
            + ",".join([text, *(f"{k}:{v}" for k, v in clash.items())]),
        )
    merged = {**preset, **explicit}
    if "mixup" in merged and "cutmix" in merged:
        raise SpecError(
            f"--augment: mixup and cutmix both mix the rows and labels of a batch; give one. "
            f"Received: {text}",
            "e.g. --augment digits,mixup:0.2 or --augment digits,cutmix",
        )
    return AugmentSpec(**merged)


def implied_image_shape(source_shape, fitted_shape) -> tuple[int, int, int] | None:
    """The (H, W, C) that image rows had before the shape rule flattened them for the model.

    Data of images shaped (H, W) or (H, W, C) that reach a flat model as H·W·C values (MNIST's
    28×28 digits into a 784-input MLP) can still be augmented as images: the augmenter views
    each flat row as this shape, as `--image-shape` would.

    Example:
        >>> implied_image_shape((28, 28), (784,))
        (28, 28, 1)
        >>> implied_image_shape((28, 28, 1), (28, 28, 1)) is None  # already images
        True

    Args:
        source_shape: one row of the data as read, e.g. (28, 28) or (28, 28, 1).
        fitted_shape: the same row as the model takes it, e.g. (784,).

    Returns:
        (H, W, C), or None when the rows reach the model as images (rank 3), unchanged, or
        were not images (rank other than 2 or 3).
    """
    source = tuple(int(d) for d in source_shape)
    fitted = tuple(int(d) for d in fitted_shape)
    if len(fitted) == 3 or source == fitted:
        return None
    if len(source) == 2:
        return (*source, 1)
    return source if len(source) == 3 else None


def _parse_items(text: str) -> dict[str, str | float]:
    out = {}
    for item in text.split(","):
        name, colon, value = item.partition(":")
        out[name] = _value(name, value if colon else None, item)
    return out


def _value(name: str, value: str | None, item: str) -> str | float:
    if name not in NAMES:
        raise SpecError(
            f"--augment: unknown augmentation `{name}`. Received: {item}",
            _spec.did_you_mean(name, [*NAMES, *PRESETS]),
        )
    if value is not None and not value:
        raise SpecError(
            f"--augment: `{name}:` has no value. Received: {item}",
            f"write `{name}` alone for the default, or e.g. {_example(name)}",
        )
    if name == "flip":
        mode = (value or "horizontal").lower()
        if mode not in FLIP_MODES:
            raise SpecError(
                f"--augment: flip takes horizontal, vertical or both. Received: {item}",
                _spec.did_you_mean(mode, list(FLIP_MODES)),
            )
        return mode
    default, lo, hi, lo_open, hi_open, example, _ = _NUMERIC[name]
    if value is None:
        return default
    try:
        return _spec.number(
            name, value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, example=example
        )
    except SpecError as err:  # the shared helper words it `key=value`; here it is `name:value`
        raise SpecError(
            "--augment: " + err.message.replace(f"{name}=", f"{name}:"),
            (err.hint or "").replace(f"{name}=", f"{name}:"),
        ) from None


def _example(name: str) -> str:
    return "flip:both" if name == "flip" else f"{name}:{_NUMERIC[name][5]}"


def _format(value: str | float) -> str:
    if isinstance(value, str):
        return value
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))
