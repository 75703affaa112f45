"""The training history: per-epoch rows, the final metrics, and the CSV/JSON files."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

from reuse.training.stage import StageResult


def final_metrics(history: list[dict], stages: list[StageResult], *, restored: bool) -> dict:
    """The metrics of the epoch whose weights the model ends with: the best epoch of the last
    kept stage (early stopping and stage judging restore those weights), else the last epoch."""
    kept = [s for s in stages if s.kept]
    if not history:
        return {}
    if not kept or not restored:
        return history[-1]
    stage = kept[-1]
    rows = [
        r
        for r in history
        if r.get("stage") == stage.index and math.isfinite(r.get(stage.monitor, math.nan))
    ]
    return min(rows, key=lambda r: r[stage.monitor]) if rows else history[-1]


def history_has_finite(history: list[dict]) -> bool:
    return any(math.isfinite(row.get("loss", float("nan"))) for row in history)


def write_history(history: list[dict], path: str | Path) -> tuple[Path, Path]:
    """Write the history as CSV and JSON side by side (`path` without extension + .csv/.json)."""
    import csv

    from reuse.core import atomic, jsonio

    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".csv", ".json") else base
    csv_path, json_path = Path(f"{base}.csv"), Path(f"{base}.json")
    columns: list[str] = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    with atomic.atomic_write(csv_path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    atomic.write_text(json_path, jsonio.dumps(history, indent=1) + "\n")
    return csv_path, json_path


def write_report(path: str | Path, result) -> Path:
    """Write `<out>.report.json`: the cut, the head, the reused layers, the stage table, the
    final metrics and whether the cache was used (atomically). Returns the path."""
    from reuse.core import atomic, jsonio

    payload = {
        "cut": result.transfer.cut,
        "head": result.transfer.head,
        "reused": result.transfer.reused,
        "stages": [s.row() for s in result.stages],
        "metrics": result.metrics,
        "used_cache": result.used_cache,
    }
    if result.options is not None:
        payload["options"] = asdict(result.options)
    if getattr(result, "lora", None):
        payload["lora"] = result.lora
    path = Path(path)
    atomic.write_text(path, jsonio.dumps(payload, indent=1, lenient=True) + "\n")
    return path
