"""Render tabular data on stdout as a rich table, JSON or CSV (one helper for every command)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence

from reuse.core import jsonio, report

#: Shorter table headers for long row keys (JSON and CSV keep the keys).
TABLE_HEADERS = {"stored_bytes": "bytes", "compression": "codec"}


def render_rows(
    rows: Sequence[dict],
    columns: Sequence[str],
    fmt: str,
    *,
    title: str | None = None,
    footer: Sequence[str] = (),
    extra: dict | None = None,
    pad_edge: bool = True,
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

    # A header is never narrower than its name, so a narrow terminal folds cells, not header
    # words; the short headers (and pad_edge=False) keep a cache's table within 80 columns.
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=pad_edge)
    for col in columns:
        numeric = bool(rows) and all(
            isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool) for r in rows
        )
        header = TABLE_HEADERS.get(col, col)
        table.add_column(
            header,
            justify="right" if numeric else "left",
            overflow="fold",
            min_width=len(header),
        )
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
