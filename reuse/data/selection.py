"""Which rows of a data source are used: `--classes`, `--per-class`, `--limit`, and the parsing
of the selection options (`--classes 5-9`, `--image-size 32x32`).

Selection is applied to the labels only (the inputs stay lazy), in this order: `classes`
(labels remapped to 0..k-1 in sorted order of the requested classes), `per_class` (the first
N rows of each class; with `seed`, N rows drawn by a seeded shuffle), `limit` (the first N
rows; with `seed`, N rows drawn at random). Selected rows keep the source order.
`selection_string` is the canonical record of these options, so caches can tell selections
apart.
"""

from __future__ import annotations

import re

import numpy as np

from reuse.core.errors import DataError, UsageError


def class_list(spec) -> list[int]:
    """The labels a class spec names, in the order written, repeats kept.

    Example:
        >>> class_list("7,1-3")
        [7, 1, 2, 3]

    Args:
        spec: "5-9", "1,3,7", "0,5-7" (ranges and lists mixed), or a list/tuple/range/array
            of ints.

    Raises:
        UsageError: a malformed spec (e.g. "five", "9-5") or one that names no labels; echoes it.
    """
    if isinstance(spec, (list, tuple, range, np.ndarray)):
        values = [int(v) for v in spec]
    else:
        text = str(spec).replace(" ", "")
        values = []
        for part in text.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
                raise UsageError(
                    f"`--classes` must be a range or a list of labels. Received: classes={spec!r}",
                    "use e.g. --classes 5-9 or --classes 1,3,7",
                )
            low = int(m.group(1))
            high = int(m.group(2)) if m.group(2) is not None else low
            values.extend(range(low, high + 1))
    if not values:
        raise UsageError(
            f"`--classes` selects no labels. Received: classes={spec!r}", "use e.g. --classes 5-9"
        )
    return values


def parse_classes(spec) -> list[int]:
    """Parse a class selection into sorted, distinct labels: "5-9" -> [5..9], "3,1" -> [1, 3].

    Example:
        >>> parse_classes("0,5-7")
        [0, 5, 6, 7]

    Raises:
        UsageError: see `class_list`.
    """
    return sorted(set(class_list(spec)))


def parse_image_size(spec) -> tuple[int, int] | None:
    """Parse an image size: "32x32" -> (32, 32), "28" -> (28, 28); (h, w) and None pass through.

    Raises:
        UsageError: a malformed size.
    """
    if spec is None:
        return None
    if isinstance(spec, (tuple, list)):
        parts = list(spec)
    else:
        parts = re.split(r"[x×,]", str(spec).strip().lower())
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise UsageError(
            f"`--image-size` must be HEIGHTxWIDTH. Received: image_size={spec!r}",
            "use e.g. --image-size 32x32",
        )
    return size  # type: ignore[return-value]


def positive_int(name: str, value) -> int | None:
    """`value` as an int when it is a positive integer or None.

    Raises:
        UsageError: anything else; names the flag (`--per-class` for "per_class").
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        flag = "--" + name.replace("_", "-")
        raise UsageError(
            f"`{flag}` must be a positive integer. Received: {name}={value!r}",
            f"e.g. {flag} 100, or leave it out to keep every row",
        )
    return int(value)


def select_rows(y, n: int, classes, per_class, limit, seed, where: str):
    """(indices, y, class_map, kept classes) of `n` rows after classes -> per_class -> limit.

    Args:
        y: labels, shape (n,), or None (then only `limit` may be given).
        n: the number of source rows.
        classes, per_class, limit, seed: as in `load_data`.
        where: the data's path, for messages.

    Returns:
        indices: int64 source rows kept, ascending; y: their labels (remapped when `classes`);
        class_map: {original: new} or None; kept: the requested classes or None.

    Raises:
        DataError: selecting by class without integer labels, or classes that select nothing.
    """
    from reuse.core import report

    indices = np.arange(n, dtype=np.int64)
    class_map = None
    kept = None
    needs = [
        flag for flag, v in (("--classes", classes), ("--per-class", per_class)) if v is not None
    ]
    if needs and y is None:
        raise DataError(
            f"{where} has no labels; {' and '.join(needs)} {'need' if len(needs) > 1 else 'needs'} them",
            "pass the labels (e.g. --labels FILE)",
        )
    if needs and (y.dtype.kind not in "iu" or y.ndim != 1):
        kind = (
            f"floats (dtype {y.dtype}, regression targets)"
            if y.dtype.kind == "f"
            else f"of shape {y.shape[1:]} per row (dtype {y.dtype})"
        )
        verb = "need" if len(needs) > 1 else "needs"
        raise DataError(
            f"{where}: the labels are {kind}; {' and '.join(needs)} {verb} one integer class label per row",
            "store class labels as integers",
        )
    if classes is not None:
        wanted = parse_classes(classes)
        mask = np.isin(y, wanted)
        if not mask.any():
            present = np.unique(y)
            shown = (
                f"{present.min()}..{present.max()}"
                if len(present) > 12
                else ", ".join(map(str, present))
            )
            raise DataError(
                f"{where}: --classes {classes} selects no rows (labels present: {shown})",
                "pick classes that the data has",
            )
        missing = sorted(set(wanted) - set(np.unique(y[mask]).tolist()))
        if missing:
            report.warn(
                f"{where}: no rows with label(s) {', '.join(map(str, missing))} of --classes {classes}"
            )
        class_map = {int(c): i for i, c in enumerate(wanted)}
        indices = indices[mask]
        y = np.searchsorted(np.array(wanted), y[mask]).astype(np.int64)
        kept = wanted
    rng = np.random.default_rng(seed) if seed is not None else None
    if per_class is not None:
        chosen = []
        short = []
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            if rng is not None:
                rows = rng.permutation(rows)
            if len(rows) < per_class:
                short.append(f"{c} ({len(rows)})")
            chosen.append(rows[:per_class])
        if short:
            report.warn(f"{where}: fewer than {per_class} rows for class(es) {', '.join(short)}")
        pos = np.sort(np.concatenate(chosen))
        indices, y = indices[pos], y[pos]
    if limit is not None and limit < len(indices):
        pos = (
            np.sort(rng.choice(len(indices), limit, replace=False))
            if rng is not None
            else np.arange(limit)
        )
        indices = indices[pos]
        y = None if y is None else y[pos]
    return indices, y, class_map, kept


def selection_string(keys: dict, opts: dict) -> str:
    """Canonical `k=v;...` of what shapes the rows and values (defaults and None left out)."""
    merged = {k: v for k, v in {**keys, **opts}.items() if v is not None}
    if merged.get("scale") is True:
        merged.pop("scale")
    if "per_class" not in merged and "limit" not in merged:
        merged.pop("seed", None)  # the seed changes nothing then
    return ";".join(f"{k}={merged[k]}" for k in sorted(merged))
