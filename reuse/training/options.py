"""The options of a fine-tuning run (`FinetuneOptions`) and their mode-dependent defaults.

Every CLI flag of `finetune`, `lr-find` and `check` maps one to one onto a field here; `check()`
refuses bad values with one UsageError naming the flag and echoing the value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from reuse.core.errors import SpecError, UsageError

UNFREEZE_MODES = ("none", "all", "gradual")

# The defaults of --unfreeze gradual without and with --augment. Chosen on the MNIST 5-9 task
# (100 images per digit, 5 seeds; bench/bench_mnist_augment.py and docs/finetune.md): short
# stages win without augmentation (longer ones overfit 500 images), long stages at one
# learning rate with label smoothing win with it.
GRADUAL_DEFAULTS = {
    False: {
        "epochs": 10,
        "early_stopping": 3,
        "stage_lr_div": 2.0,
        "label_smoothing": 0.0,
        "batch_size": 32,
    },
    True: {
        "epochs": 200,
        "early_stopping": 20,
        "stage_lr_div": 1.0,
        "label_smoothing": 0.1,
        "batch_size": 20,
    },
}
OTHER_DEFAULTS = {
    "epochs": 100,
    "early_stopping": 5,
    "stage_lr_div": 2.0,
    "label_smoothing": 0.0,
    "batch_size": 32,
}
STAGE_LR_MODES = ("div", "find")
LORA_SAVE = ("merged", "adapters")


@dataclass
class FinetuneOptions:
    """Every knob of a fine-tuning run (the CLI flags map one to one)."""

    cut: str | None = None
    head: str = "auto"
    loss: str | None = None
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str | None = None
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0
    max_norm: float | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    label_smoothing: float | None = None  # None: 0, or 0.1 for gradual with --augment
    early_stopping: int | None = None
    epochs: int | None = None  # None: 10 per stage for gradual, else 100 with early stopping
    batch_size: int | None = None  # None: 32, or 20 for gradual with --augment
    seed: int | None = None
    val_split: float | None = None
    unfreeze: str = "none"
    train_bn: bool = False
    # gradual unfreezing (reuse.training.runner)
    # Two layers per stage: each stage also divides the lr by stage_lr_div, so one layer per
    # stage leaves the lowest of n reused layers training at lr / 2^n (1/32 for MNIST's five),
    # where it barely moves. On the MNIST 5-9 task (bench/bench_mnist_transfer.py, 3 seeds) step
    # 2 beats the hand-written freeze-then-unfreeze Keras script on every seed; step 1 does not.
    unfreeze_step: int = 2
    stage_lr_div: float | None = None  # None: 2, or 1 with --augment
    max_unfreeze: int | None = None
    layer_lr_decay: float | None = None
    reuse_depth: str = "keep"
    stage_epochs: int | None = None
    # each gradual stage's learning rate: "div" divides the first stage's by stage_lr_div per
    # stage; "find" runs a short range test per stage (reuse.training.lr_range.stage_lr).
    stage_lr: str = "div"
    tensorboard: str | None = None
    # data augmentation (reuse.augment): the --augment spec, and the (H, W, C) that flat rows
    # are viewed as for image operations (--image-shape)
    augment: str | None = None
    image_shape: tuple | None = None
    # LoRA (reuse.training.lora): adapters of this rank on the reused layers matching
    # lora_layers (default: every LoRA-capable one), scaled by lora_alpha / lora (default 1);
    # the run saves the merged model, or only the adapters and the head (lora_save="adapters").
    lora: int | None = None
    lora_layers: str | None = None
    lora_alpha: float | None = None
    lora_save: str = "merged"
    # compute in float16 / bfloat16 with float32 weights and outputs (reuse.training.precision)
    mixed_precision: str | None = None

    def resolve_defaults(self) -> None:
        """Fill the defaults that depend on the mode (`GRADUAL_DEFAULTS`, measured on the
        MNIST 5-9 task by bench/bench_mnist_augment.py).

        Gradual unfreezing: each stage trains until the validation loss stops improving
        (early stopping with `early_stopping` patience, best weights restored), up to `epochs`
        per stage. Without augmentation the stages are short (10 epochs, patience 3, lr halved
        per stage): 500 images overfit fast. With --augment they run long (up to 200 epochs,
        patience 20, the same lr in every stage, batch 20, label smoothing 0.1). Otherwise: up
        to 100 epochs with early stopping (patience 5) when the epoch count was left open. An
        explicit --epochs without --early-stopping trains exactly that many epochs; every
        value given explicitly wins.
        """
        gradual = self.unfreeze == "gradual"
        table = GRADUAL_DEFAULTS[bool(self.augment)] if gradual else OTHER_DEFAULTS
        if self.epochs is None:
            self.epochs = table["epochs"]
            if self.early_stopping is None:
                self.early_stopping = table["early_stopping"]
        if gradual and self.early_stopping is None:
            self.early_stopping = table["early_stopping"]
        for name in ("stage_lr_div", "label_smoothing", "batch_size"):
            if getattr(self, name) is None:
                setattr(self, name, table[name])

    def unfreeze_top(self) -> int | None:
        """N of `--unfreeze top:N` (the top N reused layers with weights train, the rest are
        frozen), or None for the other modes.

        Raises:
            UsageError: an unfreeze mode that is none of none, all, gradual, top:N (N >= 0).
        """
        text = str(self.unfreeze)
        if text in UNFREEZE_MODES:
            return None
        name, _, count = text.partition(":")
        if name.strip().lower() == "top" and count.strip().isdigit():
            return int(count)
        raise UsageError(
            f"--unfreeze must be one of {', '.join(UNFREEZE_MODES)} or top:N. Received: {self.unfreeze!r}",
            "use --unfreeze none, all, gradual, or top:2 (the top two reused layers train)",
        )

    def check(self) -> None:
        """Refuse bad values where they enter, naming the option and echoing the value."""
        if self.augment is not None:
            from reuse.augment.spec import parse_augment

            spec = parse_augment(self.augment)
            self.augment = spec.canonical() if spec else None
        if self.image_shape is not None:
            self.image_shape = parse_image_shape(self.image_shape)
            if not self.augment:
                raise UsageError(
                    "--image-shape tells --augment how to view flat rows as images, and no "
                    "--augment was given",
                    "add --augment SPEC (e.g. --augment digits), or drop --image-shape",
                )
        self.resolve_defaults()
        from reuse.data.dataset import check_val_split

        check_val_split(self.val_split)
        self._check_specs()
        if self.unfreeze not in UNFREEZE_MODES:
            self.unfreeze_top()  # top:N, or a UsageError naming the modes
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "unfreeze_step": self.unfreeze_step,
        }
        for name, value in positive.items():
            if value is None or value < 1:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be >= 1. Received: {value}",
                    "give a positive number",
                )
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be > 0. Received: {self.lr}", "try --lr 1e-3")
        for name in ("l1", "l2", "dropout", "label_smoothing"):
            value = getattr(self, name)
            if value < 0 or (name in ("dropout", "label_smoothing") and value >= 1):
                raise UsageError(
                    f"--{name.replace('_', '-')} must be in [0, 1). Received: {value}"
                    if name in ("dropout", "label_smoothing")
                    else f"--{name} must be >= 0. Received: {value}",
                    "give a small non-negative number",
                )
        if self.stage_lr not in STAGE_LR_MODES:
            raise UsageError(
                f"--stage-lr must be one of {', '.join(STAGE_LR_MODES)}. Received: {self.stage_lr!r}",
                "use --stage-lr div or find",
            )
        if self.stage_lr_div <= 0:
            raise UsageError(
                f"--stage-lr-div must be > 0. Received: {self.stage_lr_div}",
                "e.g. --stage-lr-div 2",
            )
        if self.layer_lr_decay is not None and self.layer_lr_decay <= 0:
            raise UsageError(
                f"--layer-lr-decay must be > 0. Received: {self.layer_lr_decay}",
                "e.g. --layer-lr-decay 2.6",
            )
        check_lora_options(
            self.lora, self.lora_alpha, self.lora_layers, self.lora_save, self.unfreeze
        )
        if self.mixed_precision is not None:
            from reuse.surgery.precision import policy_name

            policy_name(self.mixed_precision)
            if self.layer_lr_decay and self.mixed_precision == "float16":
                raise UsageError(
                    "--mixed-precision float16 cannot scale the loss of --layer-lr-decay's "
                    "grouped optimizers",
                    "use --mixed-precision bfloat16 with --layer-lr-decay",
                )
            if self.reuse_depth != "keep":
                raise UsageError(
                    "--mixed-precision does not cover --reuse-depth search",
                    "drop one of the two",
                )
        if self.early_stopping is not None and self.early_stopping < 0:
            raise UsageError(
                f"--early-stopping must be >= 0. Received: {self.early_stopping}",
                "give a patience in epochs",
            )

    def _check_specs(self) -> None:
        """The --head, --schedule and --optimizer specs, as far as they can be read without
        TensorFlow (layer grammar, schedule names and keys, optimizer names); the rest is
        checked where Keras builds them."""
        from reuse.core import spec_grammar
        from reuse.training import optimizers, schedules

        if self.head and self.head != "auto":
            from reuse.surgery.layer_spec import parse_layer_spec

            parse_layer_spec(self.head)
        if self.schedule:
            schedules.check_spec(self.schedule)
        name, _ = spec_grammar.split_named(self.optimizer or "adam", "optimizer", "--optimizer")
        if name not in optimizers.OPTIMIZER_NAMES:
            raise SpecError(
                f"unknown optimizer '{name}'",
                spec_grammar.did_you_mean(name, optimizers.OPTIMIZER_NAMES),
            )


def check_lora_options(rank, alpha, layers, save, unfreeze: str) -> None:
    """Refuse bad LoRA options, naming the flag and echoing the value.

    Raises:
        UsageError: rank < 1, alpha <= 0, a regex that does not compile, an unknown
            --lora-save, LoRA options without --lora, or --lora with --unfreeze all/gradual.
    """
    if rank is None:
        given = [
            flag
            for flag, value in (("--lora-layers", layers), ("--lora-alpha", alpha))
            if value is not None
        ]
        if given or save not in (None, "merged"):
            raise UsageError(
                f"{(given or ['--lora-save'])[0]} needs --lora RANK",
                "add --lora 4 (the adapters' rank)",
            )
        return
    if rank < 1:
        raise UsageError(f"--lora must be a rank >= 1. Received: {rank}", "e.g. --lora 4")
    if alpha is not None and not alpha > 0:
        raise UsageError(f"--lora-alpha must be > 0. Received: {alpha}", "e.g. --lora-alpha 8")
    if save not in (None, *LORA_SAVE):
        raise UsageError(
            f"--lora-save must be merged or adapters. Received: {save!r}",
            "use --lora-save merged (a plain model) or adapters (a small .npz)",
        )
    if layers is not None:
        try:
            re.compile(layers)
        except re.error as err:
            raise UsageError(
                f"--lora-layers is not a valid regular expression ({err}). Received: {layers!r}",
                "e.g. --lora-layers 'hidden[45]'",
            ) from None
    if unfreeze != "none":
        raise UsageError(
            f"--lora trains adapters on frozen layers in one stage; it cannot be combined with --unfreeze {unfreeze}",
            "drop --unfreeze (LoRA replaces unfreezing), or drop --lora",
        )


def default_lr(optimizer_text: str) -> float:
    name = optimizer_text.split(":", 1)[0].strip().lower()
    return {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "ftrl": 0.05}.get(
        name, 0.001
    )


def parse_image_shape(value) -> tuple[int, int, int]:
    """`--image-shape H,W,C` (text or a sequence) as a tuple of three positive ints.

    Raises:
        UsageError: not three positive integers.
    """
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(
            f"--image-shape must be H,W,C (three positive integers). Received: {value!r}",
            "e.g. --image-shape 28,28,1 for flat MNIST rows",
        )
    return shape
