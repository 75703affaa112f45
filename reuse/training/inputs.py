"""Where a stage's rows come from: the raw data, or a cached tap of the feature cache.

`TrainingInputs` hands each stage its (x, y) training and validation arrays for a tap (None: the
raw inputs); `deepest_tap_below` picks the cached tap a stage can train from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reuse.core.errors import CacheMismatch, DataError, UsageError
from reuse.training.transfer import TransferModel


class TrainingInputs:
    """Where each stage's inputs come from: a feature cache's taps, or the raw data.

    Validation rows for a cached tap are computed once per tap through the frozen part (they
    are few); training rows come from the cache, so the layers below the tap never run.
    """

    def __init__(
        self,
        transfer: TransferModel,
        *,
        x=None,
        y=None,
        cache=None,
        val=None,
        val_split=None,
        seed=None,
    ):
        self.transfer = transfer
        self.cache = cache
        self.y = y if cache is None else cache.labels
        self.x = x
        self._features: dict[str, np.ndarray] = {}
        self._val_features: dict[str, np.ndarray] = {}
        self.val_x, self.val_y = val if val is not None else (None, None)
        self.train_rows = self.val_rows = None
        if val is None and val_split:
            self.hold_out(val_split, seed)

    def hold_out(self, fraction: float, seed=None) -> None:
        """Validate on a seeded `fraction` of the training rows (when no --val was given)."""
        perm = np.random.default_rng(seed).permutation(len(self.y))
        n_val = max(1, int(round(fraction * len(self.y))))
        if n_val >= len(self.y):
            raise DataError(
                f"{len(self.y)} training row(s): holding out {n_val} for validation leaves none to train on",
                "pass validation data with --val, or more training rows",
            )
        self.val_rows, self.train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    @property
    def taps(self) -> list[str]:
        return list(self.cache.taps) if self.cache is not None else []

    def has_validation(self) -> bool:
        return self.val_x is not None or self.val_rows is not None

    def train(self, tap: str | None):
        x = self._inputs(tap)
        y = self.y
        if self.train_rows is not None:
            return x[self.train_rows], y[self.train_rows]
        return x, y

    def train_views(self, tap: str | None, spec: str, image_shape=None):
        """The cached augmented views of the training rows at `tap` (None: the raw input
        rows, from `cache-features --input-views`), shape (K, N, ...).

        Raises:
            CacheMismatch: the cache holds no views, views made with another spec, or with
            another --image-shape.
        """
        have = self.cache.augment_spec

        def rebuild() -> str:
            return self.cache.rebuild_command(
                augment=spec, image_shape=image_shape, input_views=tap is None
            )

        if have != spec:
            what = f"views made with --augment {have}" if have else "no augmented views"
            raise CacheMismatch(
                f"--augment {spec} trains on augmented views, and the cache {self.cache.path} holds {what}",
                f"rebuild it: {rebuild()}; or drop the cache (--no-cache, or no --features) "
                "to augment on the fly",
            )
        made = self.cache.image_shape
        if image_shape is not None and made is not None and tuple(image_shape) != tuple(made):
            raise CacheMismatch(
                f"--image-shape {','.join(map(str, image_shape))}: the views in {self.cache.path} "
                f"were made with --image-shape {','.join(map(str, made))}",
                f"use --image-shape {','.join(map(str, made))}, or rebuild it: {rebuild()}",
            )
        views = self.cache.input_views() if tap is None else self.cache.views(tap)
        if self.train_rows is not None:
            return views[:, self.train_rows]
        return views

    def has_input_views(self) -> bool:
        """Whether stages that train from the raw inputs can train on cached augmented views
        of them (`cache-features --input-views`)."""
        return self.cache is not None and self.cache.has_input_views

    def validation(self, tap: str | None):
        if self.val_rows is not None:
            return self._inputs(tap)[self.val_rows], self.y[self.val_rows]
        if self.val_x is None:
            return None
        if tap is None:
            return self.val_x, self.val_y
        if tap not in self._val_features:
            from reuse.surgery import cuts

            bottom = cuts.bottom_model(self.transfer.model, [tap])
            # Eager calls in batches: a compiled predict on each new tap model would retrace.
            self._val_features[tap] = np.concatenate(
                [
                    np.asarray(bottom(self.val_x[i : i + 256], training=False))
                    for i in range(0, len(self.val_x), 256)
                ]
            )
        return self._val_features[tap], self.val_y

    def _inputs(self, tap: str | None):
        if tap is None:
            if self.x is None:
                raise UsageError(
                    "this stage trains layers below every cached tap, and no raw --data was given",
                    "pass --data too, or cache a lower tap with `reuse cache-features --at`",
                )
            return self.x
        if tap not in self._features:
            self._features[tap] = self.cache.array(tap)
        return self._features[tap]


def deepest_tap_below(transfer: TransferModel, trainable: list[str], taps: list[str]) -> str | None:
    """The highest cached tap that lies below every trainable reused layer (None: raw input)."""
    order = {name: i for i, name in enumerate(transfer.reused)}
    lowest = min((order[t] for t in trainable if t in order), default=len(transfer.reused))
    best = None
    for tap in taps:
        if tap in order and order[tap] < lowest and (best is None or order[tap] > order[best]):
            best = tap
    return best


def resolve_cache(path, transfer: TransferModel, data=None, model_path: str | None = None):
    """Open a feature cache for `transfer`, refusing one made from another model or other data;
    `model_path` (the base model's file) is the model the hints' rebuild command caches
    (default: the one the cache was made from)."""
    from reuse.cache import open_cache

    cache = open_cache(path, model_path=model_path)
    try:
        # A cache of this very model with a tap above the cut (the old output layer, which the
        # new head replaces) would otherwise read as a cache of another model.
        above = [t for t in cache.taps if t not in transfer.reused]
        made = cache.model_path
        if (
            model_path is not None
            and above
            and made
            and Path(made).resolve() == Path(model_path).resolve()
        ):
            raise CacheMismatch(
                f"the cache {path} holds {', '.join(above)}, above the cut {transfer.cut}: "
                "the new head replaces the layers above the cut",
                f"pass --cut {above[-1]} to keep them, or cache layers at or below "
                f"{transfer.cut}: reuse cache-features {model_path} --data DATA "
                f"--at {transfer.cut} -o FEATURES.h5",
            )
        cache.check_model(transfer.model, model_path)
    except BaseException:
        cache.close()
        raise
    usable = [t for t in cache.taps if t in transfer.reused]
    if not usable:
        raise CacheMismatch(
            f"the cache {path} holds taps {', '.join(cache.taps)}, none of which is a reused layer of this model "
            f"(the reused layers end at {transfer.cut})",
            f"rebuild it: {cache.rebuild_command()}",  # names model_path (opened for it)
        )
    if data is not None and hasattr(data, "identity"):
        cache.check_data(data)
    return cache


def data_arrays(data):
    """(x, y, identity) from a Dataset, an (x, y) pair, or None."""
    if data is None:
        return None, None, None
    if isinstance(data, tuple):
        x, y = data
        return np.asarray(x, dtype=np.float32), None if y is None else np.asarray(y), None
    x, y = data.arrays()
    return x, y, getattr(data, "identity", None)
