"""Test-time augmentation: average a model's predicted probabilities over augmented views.

`tta_predict(model, x, "crop:0.9,flip", k=8)` predicts the clean input and 8 augmented
copies of it and returns the mean of the 9 predictions. The views come from
`reuse.augment.pipeline.iter_views` (Keras preprocessing layers, seeded); mixup and cutmix
mix rows of a batch, which means nothing at prediction time, so they are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reuse.augment.pipeline import iter_views
from reuse.augment.spec import AugmentSpec, parse_augment
from reuse.core.errors import UsageError


def tta_predict(
    model,
    x,
    spec: AugmentSpec | str,
    k: int,
    image_shape: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    *,
    value_range: Sequence[float] | None = None,
    from_logits: bool = False,
) -> np.ndarray:
    """Mean of the model's outputs on `x` and on `k` augmented copies of `x`.

    Args:
        model: a Keras model with one output, (N, classes) probabilities (or logits, see
            `from_logits`).
        x: inputs (N, *row_shape), as `model.predict` takes them.
        spec: an AugmentSpec or `--augment` text; mixup and cutmix are dropped.
        k: augmented views besides the clean input; 0 gives `model.predict(x)` exactly.
        image_shape: (H, W, C) to view flat rows as images, as in `build_augmenter`.
        seed: the same seed (and batch_size) gives the same views and the same result.
        batch_size: rows per prediction and augmentation batch.
        value_range: (low, high) of the inputs; None infers (0, 1) or (0, 255) from `x`.
        from_logits: True when the model outputs logits: each view's output goes through
            a softmax before the average.

    Returns:
        float32 array shaped like `model.predict(x)`: the average over the k + 1 inputs.

    Raises:
        UsageError: k < 0; k > 0 with a spec that has nothing but mixup/cutmix (or
            nothing); a model with several outputs; image augmentations on rows that are
            not images and no `image_shape`.
        SpecError: a malformed spec text.
    """
    if int(k) < 0:
        raise UsageError(f"--tta must be >= 0. Received: {k}", "e.g. --tta 8")
    x = np.asarray(x)
    if int(k) == 0:
        return _predict(model, x, batch_size, from_logits)
    if not isinstance(spec, AugmentSpec):
        spec = parse_augment(spec)
    per_sample = spec.per_sample()
    if not per_sample:
        raise UsageError(
            f"--tta {k} needs an augmentation to make views with, and --augment is "
            f"`{spec}` (mixup and cutmix do not apply at test time)",
            "e.g. --augment crop:0.9 or --augment digits",
        )
    views = iter_views(  # checks the shapes before anything is predicted
        x,
        per_sample,
        int(k),
        seed=seed,
        image_shape=image_shape,
        value_range=value_range,
        batch_size=batch_size,
    )
    total = _predict(model, x, batch_size, from_logits).astype(np.float64)
    for view in views:
        total += _predict(model, view, batch_size, from_logits)
    return (total / (int(k) + 1)).astype(np.float32)


def _predict(model, x, batch_size: int, from_logits: bool) -> np.ndarray:
    out = model.predict(x, batch_size=int(batch_size), verbose=0)
    if isinstance(out, (list, tuple, dict)):
        raise UsageError(
            "test-time augmentation averages one output, and this model has several",
            "predict without --tta",
        )
    if from_logits:
        from keras import ops

        out = ops.convert_to_numpy(ops.softmax(out, axis=-1))
    return np.asarray(out)
