"""Sparse models by magnitude pruning: zero the smallest kernel weights.

The other road to a sparse model is FTRL with L1 (`finetune --optimizer ftrl:l1=...`), which
drives weights to exact zeros while training; this module zeroes tiny weights of a trained
model after the fact. Only kernels are pruned (dense, convolution and embedding matrices):
biases and normalization parameters are few and each one matters.

    report = sparsify(model, sparsity=0.9, scope="global")
    report.sparsity          # 0.9 of the selected kernels' weights are now exactly 0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from reuse.core.errors import SelectionError, UsageError
from reuse.surgery.layer_kinds import KERNEL_WEIGHTS

SCOPES = ("layer", "global")


@dataclass
class SparsifyReport:
    """What `sparsify` zeroed: one row per pruned tensor, and the totals."""

    rows: list[dict] = field(
        default_factory=list
    )  # layer, weight, size, zeros_before, zeros, sparsity
    scope: str = "layer"
    threshold: float | None = None
    target: float | None = None

    @property
    def size(self) -> int:
        return sum(r["size"] for r in self.rows)

    @property
    def zeros(self) -> int:
        return sum(r["zeros"] for r in self.rows)

    @property
    def sparsity(self) -> float:
        """Fraction of exact zeros over the pruned kernels."""
        return self.zeros / self.size if self.size else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "size": self.size, "zeros": self.zeros, "sparsity": self.sparsity}


def select_layers(model, layers: str | None = None, **selectors) -> list[str]:
    """Paths of the leaf layers a freeze-style selector chooses (every leaf when none is given).

    Raises:
        UsageError / SelectionError / LayerNotFound: as `reuse.surgery.freezing.select`.
    """
    from reuse.surgery.freezing import select
    from reuse.surgery.layer_tree import leaves

    chosen = {k: v for k, v in {"layers": layers, **selectors}.items() if v not in (None, False)}
    if not chosen:
        return [e.path for e in leaves(model)]
    return [e.path for e in select(model, **chosen)]


def _kernels(model, paths: list[str]) -> list[tuple[str, object]]:
    from reuse.surgery.layer_tree import find

    out = []
    for path in paths:
        layer = find(model, path).layer
        for variable in layer.weights:
            # Kernels are pruned; biases, gamma, moving_mean ... are kept.
            if variable.path.rsplit("/", 1)[-1] in KERNEL_WEIGHTS:
                out.append((path, variable))
    return out


def check_arguments(threshold: float | None, sparsity: float | None, scope: str) -> None:
    """Refuse bad `sparsify` arguments before any model is loaded.

    Raises:
        UsageError: neither or both of threshold/sparsity, an out-of-range value, a bad scope.
    """
    if (threshold is None) == (sparsity is None):
        raise UsageError(
            "give exactly one of --threshold and --sparsity",
            "e.g. --sparsity 0.9 or --threshold 1e-3",
        )
    if threshold is not None and not threshold >= 0:
        raise UsageError(
            f"--threshold must be >= 0. Received: threshold={threshold}", "e.g. --threshold 1e-3"
        )
    if sparsity is not None and not 0 <= sparsity < 1:
        raise UsageError(
            f"--sparsity must be in [0, 1). Received: sparsity={sparsity}", "e.g. --sparsity 0.9"
        )
    if scope not in SCOPES:
        raise UsageError(
            f"--scope must be layer or global. Received: scope={scope!r}",
            "use --scope layer or --scope global",
        )


def sparsify(
    model,
    *,
    threshold: float | None = None,
    sparsity: float | None = None,
    scope: str = "layer",
    layers: str | None = None,
    selectors: dict | None = None,
) -> SparsifyReport:
    """Zero the smallest-magnitude kernel weights of `model`, in place.

    Example:
        >>> report = sparsify(model, sparsity=0.8, layers="hidden[12]")
        >>> [(r["layer"], round(r["sparsity"], 2)) for r in report.rows]
        [('hidden1', 0.8), ('hidden2', 0.8)]

    Args:
        model: a Keras model; its kernels are changed in place.
        threshold: zero every weight with |w| < threshold.
        sparsity: zero this fraction of the weights, in [0, 1): the smallest ones of each
            kernel (scope "layer") or of all selected kernels pooled (scope "global").
        scope: "layer" or "global"; applies to `sparsity` (a threshold is the same either way).
        layers: a regular expression that must fully match a layer's path or name.

    Returns:
        SparsifyReport with one row per pruned kernel and the sparsity reached.

    Raises:
        UsageError: neither or both of threshold/sparsity, an out-of-range value, a bad scope.
        SelectionError: the selection has no layer with a kernel.
    """
    check_arguments(threshold, sparsity, scope)
    kernels = _kernels(model, select_layers(model, layers, **(selectors or {})))
    if not kernels:
        raise SelectionError(
            "the selected layers have no kernel to sparsify",
            "select dense, convolution or embedding layers",
        )
    values = [np.asarray(v.numpy()) for _, v in kernels]
    if threshold is not None:
        cutoffs = [threshold] * len(values)
        counts = [None] * len(values)
    elif scope == "global":
        pooled = np.concatenate([np.abs(a).ravel() for a in values])
        k = int(np.floor(sparsity * pooled.size))
        # Exactly k weights in all: the k smallest, ties broken by position.
        chosen = np.zeros(pooled.size, dtype=bool)
        if k:
            chosen[np.argpartition(pooled, k - 1)[:k]] = True
        counts, offset = [], 0
        for a in values:
            counts.append(chosen[offset : offset + a.size].reshape(a.shape))
            offset += a.size
        cutoffs = [None] * len(values)
    else:
        counts = [None] * len(values)
        cutoffs = [None] * len(values)
    report = SparsifyReport(scope=scope, threshold=threshold, target=sparsity)
    for (path, variable), a, cutoff, mask in zip(kernels, values, cutoffs, counts, strict=True):
        if cutoff is not None:
            mask = np.abs(a) < cutoff
        elif mask is None:
            mask = _smallest(a, int(np.floor(sparsity * a.size)))
        pruned = np.where(mask, np.zeros_like(a), a)
        variable.assign(pruned)
        report.rows.append(
            {
                "layer": path,
                "weight": variable.path.rsplit("/", 1)[-1],
                "shape": list(a.shape),
                "size": int(a.size),
                "zeros_before": int(np.sum(a == 0)),
                "zeros": int(np.sum(pruned == 0)),
                "sparsity": float(np.mean(pruned == 0)),
            }
        )
    return report


def _smallest(a: np.ndarray, k: int) -> np.ndarray:
    """A mask of the k smallest |a| entries."""
    mask = np.zeros(a.size, dtype=bool)
    if k:
        mask[np.argpartition(np.abs(a).ravel(), k - 1)[:k]] = True
    return mask.reshape(a.shape)
