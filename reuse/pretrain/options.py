"""The options of a pretraining run (`PretrainOptions`), checked where they enter.

Every flag of `reuse pretrain autoencoder` and `reuse pretrain pairs` maps onto a field;
`check()` refuses a bad value with one UsageError naming the flag and echoing the value, before
TensorFlow starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from reuse.core.errors import UsageError

ARCHS = ("auto", "dense", "conv")
MODES = ("end-to-end", "stacked")
COMBINE = ("concat", "absdiff")


@dataclass
class PretrainOptions:
    """Every knob of `reuse pretrain` (the CLI flags map one to one).

    Attributes:
        layers: units per encoder layer (Dense) or filters per block (conv), bottom first.
        arch: dense, conv, or auto (conv when `image_shape` is given or rows are H,W,C images).
        activation: of the hidden layers (He-normal initialization).
        image_shape: (H, W, C) that flat rows are viewed as (conv).
        mode: autoencoder training, "end-to-end" (default) or "stacked" (greedy layer-wise).
        noise: std of Gaussian noise added to the autoencoder's inputs while training (denoising).
        dropout: dropout rate on the autoencoder's inputs while training (denoising).
        sparsity: L1 weight on the code (the top encoder layer's outputs).
        pairs: "same class?" pairs drawn for the siamese network.
        combine: how the two towers' outputs meet: concat (Géron's exercise) or absdiff |a - b|.
        augment: an `--augment` spec (`reuse.augment.spec`; mixup and cutmix refused), applied
            to the training rows only, seeded by `seed`: the autoencoder reconstructs the clean
            row from its augmented copy; pairs augment each row of a pair on its own.
        epochs, batch_size, optimizer, lr, schedule, early_stopping, clip_norm, seed,
        val_split: as in `finetune` (`reuse.training.options.FinetuneOptions`).
    """

    layers: tuple = (300, 150)
    arch: str = "auto"
    activation: str = "elu"
    image_shape: tuple | None = None
    mode: str = "end-to-end"
    noise: float = 0.0
    dropout: float = 0.0
    sparsity: float = 0.0
    pairs: int = 20000
    combine: str = "concat"
    augment: str | None = None
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str | None = None
    early_stopping: int | None = None
    clip_norm: float | None = None
    seed: int | None = None
    val_split: float | None = None

    def check(self) -> PretrainOptions:
        """Normalize and check every value, without TensorFlow; returns self.

        Raises:
            UsageError: a value out of range or of the wrong form (named, value echoed).
        """
        from reuse.surgery.layer_spec import canonical_activation, keras_activation
        from reuse.training.options import parse_image_shape

        self.layers = parse_layers(self.layers)
        self.activation = keras_activation(
            canonical_activation(self.activation, f"--activation {self.activation}")
        )
        if self.image_shape is not None:
            self.image_shape = parse_image_shape(self.image_shape)
        _one_of("--arch", self.arch, ARCHS)
        _one_of("--mode", self.mode, MODES)
        _one_of("--combine", self.combine, COMBINE)
        self._check_augment()
        if self.arch == "dense" and self.image_shape is not None and not self.augment:
            raise UsageError(
                "--image-shape views rows as images for a convolutional encoder or for "
                "--augment, and --arch is dense with no --augment",
                "drop --image-shape, or use --arch conv (or auto), or add --augment SPEC",
            )
        for name in ("epochs", "batch_size", "pairs"):
            if getattr(self, name) < 1:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(self, name)}",
                    "give a positive number",
                )
        for name in ("noise", "sparsity"):
            if not getattr(self, name) >= 0:
                raise UsageError(
                    f"--{name} must be >= 0. Received: {getattr(self, name)}",
                    "give a small non-negative number, e.g. 0.1",
                )
        if not 0 <= self.dropout < 1:
            raise UsageError(
                f"--dropout must be in [0, 1). Received: {self.dropout}", "e.g. --dropout 0.2"
            )
        if self.lr is not None and not self.lr > 0:
            raise UsageError(f"--lr must be > 0. Received: {self.lr}", "try --lr 1e-3")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise UsageError(
                f"--val-split must be between 0 and 1. Received: {self.val_split}",
                "use e.g. --val-split 0.1",
            )
        # epochs, batch size, early stopping (and, where FinetuneOptions reads them without
        # TensorFlow, the optimizer and schedule specs): checked there, as for finetune.
        self.training_options()
        return self

    def _check_augment(self) -> None:
        """Canonical `augment` (None when empty); mixup and cutmix refused: they mix rows and
        labels of a batch, and a pretraining target is a row (autoencoder) or "same class?"
        (pairs), not a class probability."""
        if self.augment is None:
            return
        from reuse.augment.spec import parse_augment

        spec = parse_augment(self.augment)
        if spec.batch_level:
            raise UsageError(
                f"pretrain augments single rows, and --augment {spec} mixes rows and labels of "
                "a batch (mixup, cutmix)",
                f"drop mixup/cutmix, e.g. --augment {spec.per_sample() or 'digits'}",
            )
        self.augment = spec.canonical() if spec else None

    def training_options(self, augment: bool = False):
        """The `FinetuneOptions` the stage loop trains with (one stage, everything trains).

        With `augment` (and an `augment` spec), the stage loop augments the training inputs
        (`reuse.training.stage.stage_augmentation`): the targets stay as they are."""
        from reuse.training.options import FinetuneOptions, default_lr

        augmenting = bool(augment and self.augment)
        options = FinetuneOptions(
            augment=self.augment if augmenting else None,
            image_shape=self.image_shape if augmenting else None,
            optimizer=self.optimizer,
            lr=self.lr or default_lr(self.optimizer),
            schedule=self.schedule,
            epochs=self.epochs,
            batch_size=self.batch_size,
            early_stopping=self.early_stopping,
            clip_norm=self.clip_norm,
            seed=self.seed,
        )
        options.check()
        return options

    def fingerprint(self, kind: str) -> dict:
        """What a checkpoint records and `--resume` must match: every architecture option."""
        return {"pretrain": kind, **asdict(self)}


def merge_options(options: PretrainOptions | None, overrides: dict) -> PretrainOptions:
    """`options` (default: PretrainOptions()) with `overrides` (field -> value), checked.

    Raises:
        UsageError: a bad value, or a name that is no option.
    """
    from dataclasses import fields

    unknown = sorted(set(overrides) - {f.name for f in fields(PretrainOptions)})
    if unknown:
        raise UsageError(f"unknown pretrain option(s): {', '.join(unknown)}", "see PretrainOptions")
    return PretrainOptions(**{**asdict(options or PretrainOptions()), **overrides}).check()


def parse_layers(value) -> tuple[int, ...]:
    """`--layers 300,150` (text or a sequence) as a tuple of positive ints.

    Raises:
        UsageError: empty, or not positive integers.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        layers = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        layers = ()
    if not layers or min(layers) < 1:
        raise UsageError(
            f"--layers must be positive integers separated by commas. Received: {value!r}",
            "e.g. --layers 300,150",
        )
    return layers


def _one_of(flag: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise UsageError(
            f"{flag} must be one of {', '.join(allowed)}. Received: {value!r}",
            f"use {flag} {allowed[0]}",
        )
