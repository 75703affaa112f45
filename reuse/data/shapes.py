"""The shape-adaptation rule: how samples of one shape are fed to a model that wants another.

One rule, here only, for every command that feeds data to a model (`cache-features`,
`finetune`, `lr-find`, `check`, `evaluate`, `predict`). With `have` the data's per-sample
shape and `want` the model's per-sample input shape (a None in `want` matches any size):

- identical shapes pass;
- flattening: samples of any shape feed a model that wants one vector of as many values
  ((28, 28) -> (784,)), and vectors feed a model with a fixed input shape of as many values
  ((784,) -> (28, 28, 1));
- size-1 axes are added or removed ((28, 28) <-> (28, 28, 1)).

None of these moves a value in memory: each is a `reshape` of C-ordered rows. Anything else
is a DataError naming both shapes; an equal number of values is not enough ((16, 12) images
are not turned into (12, 16, 1), which would scramble every image). When the data looks
channels-first for a channels-last model ((3, 8, 8) for (8, 8, 3)), or the reverse, the hint
names the `np.transpose` that fits.

    >>> fit_shape((28, 28), (28, 28, 1)).kind
    'add-channel'
    >>> fit_shape((3, 8, 8), (8, 8, 3))
    DataError: data: input shape (3, 8, 8) does not fit the model's input (8, 8, 3) — the data
    looks channels-first ...: x = np.transpose(x, (0, 2, 3, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reuse.core.errors import DataError

GENERIC_HINT = "check that the data and the model belong together (for images, --image-size)"


@dataclass(frozen=True)
class ShapeFit:
    """How samples of shape `have` are fed to a model: reshaped to `target`.

    Attributes:
        have: the data's per-sample shape, e.g. (28, 28).
        target: the per-sample shape the model gets, e.g. (784,); equals `have` when no
            change is needed.
        kind: "none", "flatten", "unflatten", "add-channel", "drop-channel" or "move-channel"
            (a size-1 axis moved, e.g. (1, 28, 28) -> (28, 28, 1)). Recorded in caches as
            their `input_adapter`.
    """

    have: tuple
    target: tuple
    kind: str

    @property
    def changes(self) -> bool:
        """True when batches must be reshaped."""
        return self.kind != "none"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A batch of shape (n, *have) as (n, *target); a view when `x` is contiguous."""
        if not self.changes:
            return x
        return np.asarray(x).reshape((len(x), *self.target))


def _matches(have: tuple, want: tuple) -> bool:
    return len(have) == len(want) and all(
        w is None or w == h for h, w in zip(have, want, strict=True)
    )


def _unit_axes(have: tuple, want: tuple) -> tuple | None:
    """`have` with size-1 axes added or removed so that it matches `want`, or None."""
    core = [h for h in have if h != 1]
    target, j = [], 0
    for w in want:
        if w == 1:
            target.append(1)
        elif j < len(core) and (w is None or w == core[j]):
            target.append(core[j])
            j += 1
        else:
            return None
    return tuple(target) if j == len(core) else None


def _transpose_hint(have: tuple, want: tuple) -> str | None:
    """The np.transpose that turns channels-first data into channels-last (or back), or None."""
    rank = len(have)
    if rank < 3 or rank != len(want):
        return None
    if _matches(have[1:] + have[:1], want):
        axes = (0, *range(2, rank + 1), 1)
        return (
            "the data looks channels-first and the model wants channels-last: "
            f"transpose it first, e.g. x = np.transpose(x, {axes})"
        )
    if _matches(have[-1:] + have[:-1], want):
        axes = (0, rank, *range(1, rank))
        return (
            "the data looks channels-last and the model wants channels-first: "
            f"transpose it first, e.g. x = np.transpose(x, {axes})"
        )
    return None


def fit_shape(have: Sequence, want: Sequence, source: str = "data") -> ShapeFit:
    """How samples of shape `have` feed a model whose per-sample input shape is `want`.

    Example:
        >>> fit_shape((28, 28), (784,)).target
        (784,)
        >>> fit_shape((28, 28, 1), (None, None, 1)).kind
        'none'

    Args:
        have: the data's per-sample shape (no batch axis), e.g. (28, 28).
        want: the model's per-sample input shape (no batch axis); None matches any size.
        source: what the data is, for the message (a path, "--data", "data").

    Returns:
        A ShapeFit; see the module doc for the rule.

    Raises:
        DataError: the shapes do not fit: names both; when the data looks channels-first
            (or channels-last for a channels-first model) the hint names the np.transpose.
    """
    have = tuple(int(d) for d in have)
    want = tuple(None if d is None else int(d) for d in want)
    if _matches(have, want):
        return ShapeFit(have, have, "none")
    total = int(np.prod(have)) if have else 1
    if len(want) == 1 and (want[0] is None or want[0] == total):
        return ShapeFit(have, (total,), "flatten")
    target = _unit_axes(have, want)
    if target is not None:
        if len(target) > len(have):
            return ShapeFit(have, target, "add-channel")
        return ShapeFit(have, target, "drop-channel" if len(target) < len(have) else "move-channel")
    if len(have) == 1 and None not in want and int(np.prod(want)) == total:
        return ShapeFit(have, want, "unflatten")
    raise DataError(
        f"{source}: input shape {have} does not fit the model's input {want}",
        _transpose_hint(have, want) or GENERIC_HINT,
    )


def model_input_shape(model) -> tuple:
    """The per-sample shape of a Keras model's (first) input, None for free sizes.

    Example:
        >>> model_input_shape(keras.Sequential([keras.Input((28, 28, 1)), ...]))
        (28, 28, 1)
    """
    return tuple(None if d is None else int(d) for d in model.inputs[0].shape[1:])


def fit_model(have: Sequence, model, source: str = "data") -> ShapeFit:
    """`fit_shape(have, model_input_shape(model), source)`: how data feeds `model`.

    Raises:
        DataError: see `fit_shape`.
    """
    return fit_shape(have, model_input_shape(model), source)


def fit_input_shape(x: np.ndarray, model, source: str = "data") -> np.ndarray:
    """Inputs `x` (n, *sample shape) reshaped for `model` by the rule in the module doc.

    Example:
        >>> fit_input_shape(np.zeros((5, 28, 28)), mlp_784).shape
        (5, 784)

    Args:
        x: a batch, shape (n, ...); returned unchanged when its shape already fits.
        model: a Keras model; its first input decides.
        source: what the data is, for the message.

    Raises:
        DataError: the shapes do not fit (see `fit_shape`).
    """
    return fit_model(tuple(np.shape(x)[1:]), model, source).apply(x)
