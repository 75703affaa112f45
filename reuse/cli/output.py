"""Render tabular data on stdout as a rich table, JSON or CSV (one helper for every command)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence

from reuse.core import jsonio, report


def render_rows(
    rows: Sequence[dict],
    columns: Sequence[str],
    fmt: str,
    *,
    title: str | None = None,
    footer: Sequence[str] = (),
    extra: dict | None = None,
) -> None:
    """Write rows in `fmt`. JSON gets `{"rows": [...], **extra}`; CSV gets the rows only."""
    if fmt == "json":
        payload = {"rows": list(rows)}
        payload.update(extra or {})
        sys.stdout.write(jsonio.dumps(payload, lenient=True) + "\n")
        return
    if fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in columns})
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        numeric = bool(rows) and all(
            isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool) for r in rows
        )
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in columns))
    console = report.stdout_console()
    console.print(table)
    for line in footer:
        console.print(line, markup=False)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join("None" if v is None else str(v) for v in value) + ")"
    return str(value)


def _csv_value(value):
    if isinstance(value, (list, tuple)):
        return "x".join("None" if v is None else str(v) for v in value)
    return value
