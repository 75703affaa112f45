"""Options that decide what a run trains (cut, head, loss, optimizer, cache), declared once for
`finetune`, `lr-find` and `check`, which build the model the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.surgery.layer_spec import ACTIVATIONS_LINE, ALIASES_HELP, HEAD_TOKENS

HEAD_HELP = (
    "'auto' (a softmax / sigmoid / linear layer sized from the labels) or a layer spec, "
    f"e.g. dense:100:elu,dropout:0.3,dense:5:softmax. Tokens: {HEAD_TOKENS}; name=NAME on any "
    f"token. {ACTIVATIONS_LINE} {ALIASES_HELP}"
)
OPTIMIZER_HELP = (
    "NAME[:key=value,...]: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, nadam, "
    "ftrl (ftrl:l1=0.01,l2=0.001 for sparse models)."
)
SCHEDULE_HELP = (
    "NAME[:key=value,...]: constant, exponential, natural-exp, piecewise, polynomial, power, "
    "cosine, one-cycle, performance. E.g. exponential:decay_rate=0.1,decay_steps=1000 or "
    "piecewise:boundaries=500,values=0.01;0.001 or performance:factor=0.5,patience=2."
)

FeaturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--features",
        help="Feature cache from `reuse cache-features` (default: the one in the piped record); "
        "training runs from it.",
    ),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Ignore the feature cache in the piped record.")
]
CutOpt = Annotated[
    str | None,
    typer.Option(
        "--cut",
        help="Last reused layer; everything above it is dropped. Default: all but the output layer.",
    ),
]
HeadOpt = Annotated[str, typer.Option("--head", help=HEAD_HELP)]
LossOpt = Annotated[
    str | None,
    typer.Option(
        "--loss",
        help="sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, "
        "mse, mae, huber, log_cosh or msle; the output activation follows it. Default: from the "
        "labels (see --head auto).",
    ),
]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help=OPTIMIZER_HELP)]
UnfreezeOpt = Annotated[
    str,
    typer.Option(
        "--unfreeze",
        help="none: reused layers keep their frozen state; all: every reused layer trains; "
        "top:N: the top N reused layers with weights train, the others are frozen; "
        "gradual: stages from the top (lr-find and check prepare its first stage, the head alone).",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Rows per training step.")]


def _augment_help(use: str = "train") -> str:
    from reuse.augment.spec import NAMES, PRESETS

    presets = "; ".join(f"{name} = {value.replace(',', ', ')}" for name, value in PRESETS.items())
    names = ", ".join(NAMES)
    lead = {
        "train": "Augment the training batches (never validation, evaluate or predict; seeded "
        f"by --seed): NAME[:VALUE],... with NAME one of {names}.",
        "guide": "Augment the rows the sweep / checks train on, as finetune would: "
        f"NAME[:VALUE],... with NAME one of {names} (mixup and cutmix are left out here).",
        "views": "Store --views K augmented views of every row besides the clean one: "
        f"NAME[:VALUE],... with NAME one of {names} (not mixup or cutmix, which mix batches).",
        "pretrain": "Augment the training rows (never validation; seeded by --seed): the "
        "autoencoder reconstructs each clean row from its augmented copy, pairs augment each "
        f"row of a pair on its own. NAME[:VALUE],... with NAME one of {names} (not mixup or "
        "cutmix, which mix rows and labels).",
        "tta": "The augmentation of the --tta views (default: the one the piped finetune record "
        f"carries): NAME[:VALUE],... with NAME one of {names}; mixup and cutmix are left out.",
    }[use]
    return (
        f"{lead} Presets: {presets}. Image operations need (H, W, C) rows or --image-shape. "
        "Defaults and units: docs/augment.md."
    )


def _augment_opt(use: str):
    return Annotated[
        str | None,
        typer.Option("--augment", metavar="SPEC", help=_augment_help(use), show_default=False),
    ]


AugmentOpt = _augment_opt("train")
GuideAugmentOpt = _augment_opt("guide")
ViewsAugmentOpt = _augment_opt("views")
TtaAugmentOpt = _augment_opt("tta")
PretrainAugmentOpt = _augment_opt("pretrain")


def _image_shape_opt(help_text: str):
    return Annotated[
        str | None,
        typer.Option("--image-shape", metavar="H,W,C", help=help_text, show_default=False),
    ]


ImageShapeOpt = _image_shape_opt(
    "View flat rows as H,W,C images for --augment, e.g. 28,28,1 for 784 floats. Image data "
    "(28x28 MNIST) that is flattened for a flat model needs none: it is augmented as images."
)
PretrainImageShapeOpt = _image_shape_opt(
    "View flat rows as H,W,C images (e.g. 28,28,1): for a convolutional encoder (--arch auto "
    "then picks conv), and for --augment (also with --arch dense)."
)
MixedPrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--mixed-precision",
        metavar="float16|bfloat16",
        help="Compute in float16 or bfloat16 with float32 weights and outputs (Keras' mixed "
        "precision policy; float16 scales the loss). Pays off on GPUs; on CPUs it is slower.",
        show_default=False,
    ),
]
