"""The spot check: recompute cached rows through the live model and compare them with the file.

`cache_features` runs it before it marks a cache complete (`verify=N` random rows);
`FeatureCache.verify` runs it on demand. A row that differs beyond float tolerance raises
CacheMismatch.
"""

from __future__ import annotations

import numpy as np

from reuse.cache.layout import tap_dataset_name
from reuse.cache.streaming import forward_pass
from reuse.core.errors import CacheMismatch


def rows_of(data, rows: np.ndarray) -> np.ndarray:
    """Input rows at sorted selection positions `rows`."""
    if hasattr(data, "take"):
        return data.take(rows)[0]
    wanted, found = set(int(r) for r in rows), {}
    for offset, xb, _ in data.batches(1024):
        for r in wanted & set(range(offset, offset + len(xb))):
            found[r] = xb[r - offset]
    return np.stack([found[int(r)] for r in rows])


def spot_check(path, model, data, taps, n_rows, adapter, rows=None, forward=None) -> int:
    """Recompute rows through the live model and compare them with the file.

    Args:
        path: the cache file (complete or still `.part`).
        model: the Keras model the cache was made from.
        data: the dataset it was made from, fitted to the model input (see `reuse.data.shapes.fit_model`).
        taps: the cached tap paths, in the file's order.
        n_rows: how many random rows to check when `rows` is None.
        adapter: a function fitting input batches to the model, or None.
        rows: sorted selection positions to check instead of random ones.
        forward: a `forward_pass` of the bottom model, to reuse its compiled function.

    Returns:
        The number of rows checked.

    Raises:
        CacheMismatch: a row differs (rtol 1e-5, atol 1e-6 x the largest value, at least 1e-6;
            rtol 2e-3 for float16 features, 5e-2 for features computed in mixed precision).
    """
    import h5py

    from reuse.surgery import cuts

    if forward is None:
        forward = forward_pass(cuts.bottom_model(model, taps))
    with h5py.File(path, "r") as f:
        total = int(f.attrs["rows"])
        rtol = _tolerance(f.attrs)
        if rows is None:
            rng = np.random.default_rng()
            rows = np.sort(rng.choice(total, size=min(n_rows, total), replace=False))
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        xb = rows_of(data, rows)
        if adapter is not None:
            xb = adapter(xb)
        live = forward(xb)
        for tap, value in zip(taps, live, strict=False):
            stored = f[tap_dataset_name(tap)][rows]
            value = np.asarray(value, dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(value))) if value.size else 1.0)
            close = np.isclose(stored, value, rtol=rtol, atol=rtol / 10 * scale)
            if not close.all():
                bad = rows[np.unique(np.nonzero(~close)[0])]
                raise CacheMismatch(
                    f"{path}: row {int(bad[0])} of tap '{tap}' differs from what the model computes "
                    f"(max difference {float(np.max(np.abs(stored - value))):.3g})",
                    "the cache is damaged or was made with other weights; rebuild it with reuse cache-features",
                )
    return len(rows)


def _tolerance(attrs) -> float:
    """Relative tolerance of a spot check: float32 round-off, float16 storage (11-bit
    mantissa), or features computed in 16 bits (`--mixed-precision`, checked against the
    float32 model by `FeatureCache.verify`)."""
    from reuse.cache.layout import attr_value

    if str(attr_value(attrs.get("mixed_precision", "none"))) != "none":
        return 5e-2
    if "float16" in str(attr_value(attrs.get("tap_dtypes", ""))):
        return 2e-3
    return 1e-5
