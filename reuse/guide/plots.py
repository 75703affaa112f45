"""PNG plots of training histories and learning-rate sweeps (matplotlib, Agg backend).

    plot_history(["run_a.history.csv", "run_b.history.csv"], "curves.png", smooth=3)
    plot_lr_find(result, "lr.png")
    plot_search(rows, "val_accuracy", "search.png")   # reuse tune --plot

Reading a loss curve is step 5 of the practical tuning guide: the training and validation
loss per epoch (smoothed with a moving average when noisy), where each stage of gradual
unfreezing began, and the learning rate on a second axis, so a jump in the loss can be read
against the stage or the schedule that caused it. matplotlib is imported inside the
functions, with the Agg backend, so no display is needed and `reuse --help` stays fast.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, UsageError

# Columns a history has that are not curves.
_NOT_CURVES = {"stage", "epoch", "stage_epoch", "lr", "tap", "seconds"}


def read_history(path: str | Path) -> list[dict]:
    """The rows of a history written by `finetune` (`.csv` or `.json`; a bare base name finds either).

    Raises:
        DataError: the file is missing, unreadable, or holds no rows.
    """
    p = Path(path)
    if not p.exists():
        for suffix in (".csv", ".json"):
            if p.with_suffix(suffix).exists() or Path(str(p) + suffix).exists():
                p = (
                    p.with_suffix(suffix)
                    if p.with_suffix(suffix).exists()
                    else Path(str(p) + suffix)
                )
                break
        else:
            raise DataError(
                f"history {path} does not exist",
                "pass the .csv or .json that `reuse finetune --history` wrote",
            )
    try:
        if p.suffix.lower() == ".json":
            rows = json.loads(p.read_text())
        else:
            with open(p, newline="") as f:
                rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(
            f"cannot read history {p}: {err}", "pass the .csv or .json that `reuse finetune` wrote"
        ) from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise DataError(
            f"history {p} holds no epochs",
            "pass the history of a run that trained at least one epoch",
        )
    if not any("loss" in r for r in rows):
        raise DataError(
            f"history {p} has no `loss` column",
            "pass the .csv or .json that `reuse finetune` wrote",
        )
    return rows


def _number(text):
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` points (shorter at the start), NaNs skipped."""
    a = np.asarray(values, dtype=float)
    out = np.empty_like(a)
    for i in range(len(a)):
        chunk = a[max(0, i - window + 1) : i + 1]
        chunk = chunk[np.isfinite(chunk)]
        out[i] = chunk.mean() if len(chunk) else np.nan
    return out


def _names(paths: list[Path]) -> list[str]:
    stems = [
        p.name.removesuffix(".csv").removesuffix(".json").removesuffix(".history") for p in paths
    ]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{p.parent.name}/{s}" for p, s in zip(paths, stems, strict=True)]


def _column(rows: list[dict], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(float(v) if isinstance(v, int | float) and v is not None else math.nan)
    return out


def plot_history(
    paths,
    output,
    *,
    smooth: int | None = None,
    metrics: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """Plot one or more `finetune` histories to a PNG: loss (and accuracy) per epoch.

    Each run gets a colour; training is solid, validation dashed. Stage boundaries of gradual
    unfreezing are dotted vertical lines, and the learning rate is drawn on a second,
    logarithmic axis of the loss panel.

    Example:
        >>> plot_history(["a.history.csv", "b.history.csv"], "compare.png", smooth=3)
        PosixPath('compare.png')

    Args:
        paths: one history path or a list of them (CSV or JSON from `finetune --history`).
        output: the PNG to write (atomically).
        smooth: a moving-average window in epochs (>= 2); the raw curve stays, faint.
        metrics: the curves for the second panel (default: accuracy-like columns present).
        title: the figure title.

    Returns:
        The path written.

    Raises:
        DataError: a history that cannot be read.
        UsageError: smooth < 2.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reuse.core.atomic import atomic_path

    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not paths:
        raise UsageError("no history to plot", "pass one or more history files")
    if smooth is not None and smooth < 2:
        raise UsageError(
            f"--smooth must be a window of >= 2 epochs. Received: smooth={smooth}",
            "e.g. --smooth 3",
        )
    runs = [read_history(p) for p in paths]
    names = _names(paths)
    if metrics is None:
        metrics = []
        for rows in runs:
            for key in rows[0]:
                if (
                    key not in _NOT_CURVES
                    and not key.startswith("val_")
                    and "loss" not in key
                    and key not in metrics
                ):
                    metrics.append(key)
    panels = 2 if metrics else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    loss_ax = axes[0][0]
    lr_ax = None
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2", "C3"])
    for i, (rows, name) in enumerate(zip(runs, names, strict=True)):
        color = colors[i % len(colors)]
        epochs = _epochs(rows)
        for ax, keys in ((loss_ax, ["loss"]), *((axes[0][1], metrics),) * (panels == 2)):
            for key in keys:
                for prefix, style in (("", "-"), ("val_", "--")):
                    values = _column(rows, prefix + key)
                    if all(math.isnan(v) for v in values):
                        continue
                    label = f"{name} {prefix}{key}" if len(runs) > 1 else f"{prefix}{key}"
                    if smooth:
                        ax.plot(epochs, values, style, color=color, alpha=0.25, linewidth=1)
                        ax.plot(
                            epochs,
                            moving_average(values, smooth),
                            style,
                            color=color,
                            label=label + f" (avg {smooth})",
                        )
                    else:
                        ax.plot(
                            epochs,
                            values,
                            style,
                            color=color,
                            label=label,
                            marker="." if len(values) < 30 else None,
                        )
        stages = [r.get("stage") for r in rows]
        for boundary, stage in zip(_stage_starts(rows, epochs), _stage_labels(stages), strict=True):
            for row_axes in axes:
                for ax in row_axes:
                    ax.axvline(boundary, color=color, linestyle=":", alpha=0.6)
            if len(runs) == 1:
                loss_ax.text(
                    boundary,
                    1.0,
                    f" stage {stage}",
                    transform=loss_ax.get_xaxis_transform(),
                    fontsize=7,
                    va="top",
                    ha="left",
                    color="gray",
                )
        lrs = _column(rows, "lr")
        if any(math.isfinite(v) and v > 0 for v in lrs):
            if lr_ax is None:
                lr_ax = loss_ax.twinx()
                lr_ax.set_yscale("log")
                lr_ax.set_ylabel("learning rate")
            lr_ax.plot(
                epochs,
                lrs,
                color=color,
                linestyle="-.",
                alpha=0.5,
                linewidth=1,
                label=f"{name} lr" if len(runs) > 1 else "lr",
            )
    if any(_stage_starts(rows, _epochs(rows)) for rows in runs):
        loss_ax.plot([], [], ":", color="gray", label="stage start")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    handles, labels = loss_ax.get_legend_handles_labels()
    if lr_ax is not None:
        h2, l2 = lr_ax.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    loss_ax.legend(handles, labels, fontsize=7, loc="upper right")
    if panels == 2:
        axes[0][1].set_xlabel("epoch")
        axes[0][1].set_ylabel(", ".join(metrics))
        axes[0][1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title or ("training history" if len(runs) == 1 else f"{len(runs)} runs"))
    fig.tight_layout()
    return _save(fig, plt, output, atomic_path)


def _epochs(rows: list[dict]) -> list[float]:
    values = _column(rows, "epoch")
    return values if all(math.isfinite(v) for v in values) else list(range(1, len(rows) + 1))


def _stage_starts(rows: list[dict], epochs: list[float]) -> list[float]:
    """Where a new stage began: half an epoch before its first epoch."""
    stages = [r.get("stage") for r in rows]
    return [epochs[i] - 0.5 for i in range(1, len(rows)) if stages[i] != stages[i - 1]]


def _stage_labels(stages: list) -> list[str]:
    out = []
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            value = stages[i]
            out.append(
                str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
            )
    return out


def _save(fig, plt, output, atomic_path) -> Path:
    out = Path(output)
    if out.suffix.lower() != ".png":
        plt.close(fig)
        raise UsageError(
            f"plots are written as PNG. Received: -o {out}",
            f"use -o {out.with_suffix('.png').name}",
        )
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


def plot_lr_find(result, output, *, title: str | None = None) -> Path:
    """Plot a learning-rate sweep to a PNG: loss against lr (log scale), each rule's pick marked.

    Example:
        >>> plot_lr_find(lr_find(model, data), "lr.png")
        PosixPath('lr.png')

    Args:
        result: an `LrFindResult` (or a dict with lrs, losses, smoothed, suggestions, rule).
        output: the PNG to write.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reuse.core.atomic import atomic_path

    data = result if isinstance(result, dict) else result.to_dict()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(data["lrs"], data["losses"], color="C0", alpha=0.3, linewidth=1, label="loss")
    ax.plot(data["lrs"], data["smoothed"], color="C0", label="smoothed loss")
    lrs = np.asarray(data["lrs"])
    for i, (rule, lr) in enumerate(sorted(data.get("suggestions", {}).items())):
        y = float(np.interp(np.log(lr), np.log(lrs), data["smoothed"]))
        chosen = rule == data.get("rule")
        ax.plot(
            [lr],
            [y],
            "o",
            color=f"C{i + 1}",
            markersize=9 if chosen else 6,
            label=f"{rule}: {lr:.2g}" + (" (suggested)" if chosen else ""),
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    top = np.nanpercentile(data["smoothed"], 95) if data["smoothed"] else None
    if top is not None and math.isfinite(top):
        low = min(float(np.nanmin(data["smoothed"])), float(np.nanpercentile(data["losses"], 5)))
        ax.set_ylim(low - 0.05 * (top - low + 1e-12), top + 0.25 * (top - low + 1e-12))
    ax.legend(fontsize=8)
    ax.set_title(title or "learning-rate range test")
    fig.tight_layout()
    return _save(fig, plt, output, atomic_path)


def plot_search(rows: list[dict], metric: str, output, *, title: str | None = None) -> Path:
    """Plot a hyperparameter search to a PNG: the validation metric against the learning rate
    (log scale), one colour per weight decay; coarse trials as dots (hollow when pruned, at the
    last value they reported), fine trials as stars.

    Example:
        >>> plot_search([r.to_dict() for r in result.rows], "val_accuracy", "search.png")
        PosixPath('search.png')

    Args:
        rows: trial rows with `phase`, `state`, `value` and `config` (`lr`, `l2`).
        metric: the metric's name, for the axis.
        output: the PNG to write.

    Raises:
        UsageError: an output that is not .png. DataError: no trial has a value to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reuse.core.atomic import atomic_path

    points = [
        r
        for r in rows
        if r.get("value") is not None
        and math.isfinite(r["value"])
        and r.get("config", {}).get("lr") is not None
    ]
    if not points:
        raise DataError("no trial has a value to plot", "run more trials, or a lower lr range")
    decays = sorted({float(r["config"].get("l2", 0.0) or 0.0) for r in points})
    colour = {wd: f"C{i % 10}" for i, wd in enumerate(decays)}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for wd in decays:
        for phase, marker, size in (("coarse", "o", 40), ("fine", "*", 160)):
            for pruned in (False, True):
                sel = [
                    r
                    for r in points
                    if float(r["config"].get("l2", 0.0) or 0.0) == wd
                    and r["phase"] == phase
                    and (r["state"] == "pruned") == pruned
                ]
                if not sel:
                    continue
                label = f"wd {wd:g}" + ("" if phase == "coarse" else " (fine)")
                label += " (pruned)" if pruned else ""
                ax.scatter(
                    [r["config"]["lr"] for r in sel],
                    [r["value"] for r in sel],
                    marker=marker,
                    s=size,
                    facecolors="none" if pruned else colour[wd],
                    edgecolors=colour[wd],
                    label=label,
                )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, title="weight decay (--l2)", title_fontsize=7)
    ax.set_title(title or f"search: {metric} vs learning rate")
    fig.tight_layout()
    return _save(fig, plt, output, atomic_path)


def text_chart(
    xs, ys, *, width: int = 60, height: int = 10, mark: float | None = None, log_x: bool = True
) -> list[str]:
    """A small chart of ys against xs in characters, for the terminal; `mark` draws a column.

    Example:
        >>> print("\\n".join(text_chart([1e-5, 1e-3, 1e-1], [2.3, 1.0, 4.0], width=20, height=4)))
    """
    x = np.log10(np.asarray(xs, dtype=float)) if log_x else np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return []
    hi = float(np.percentile(y, 95)) if len(y) > 20 else float(y.max())
    lo = float(y.min())
    span_y = max(hi - lo, 1e-12)
    span_x = max(float(x.max() - x.min()), 1e-12)
    grid = [[" "] * width for _ in range(height)]
    if mark is not None:
        at = math.log10(mark) if log_x else mark
        col = int(round((at - x.min()) / span_x * (width - 1)))
        if 0 <= col < width:
            for r in range(height):
                grid[r][col] = "│"
    for xv, yv in zip(x, y, strict=True):
        col = int(round((xv - x.min()) / span_x * (width - 1)))
        row = height - 1 - int(round((min(yv, hi) - lo) / span_y * (height - 1)))
        grid[row][col] = "•" if yv <= hi else "^"
    lines = [
        f"{(hi - r * span_y / (height - 1)):>8.3g} ┤" + "".join(cells)
        for r, cells in enumerate(grid)
    ]
    left = f"{10 ** x.min():.0e}" if log_x else f"{x.min():.3g}"
    right = f"{10 ** x.max():.0e}" if log_x else f"{x.max():.3g}"
    lines.append(" " * 9 + "└" + "─" * width)
    lines.append(" " * 10 + left + " " * max(1, width - len(left) - len(right)) + right)
    return lines
