"""`report.bar`: a progress bar on a terminal, nothing otherwise (pipes, files, --quiet)."""

from __future__ import annotations

import io

from reuse.core import report


def _terminal(monkeypatch):
    from rich.console import Console

    buffer = io.StringIO()
    monkeypatch.setattr(report, "_console", Console(file=buffer, force_terminal=True, width=100))
    monkeypatch.setattr(report.sys.stderr, "isatty", lambda: True, raising=False)
    return buffer


def test_bar_draws_on_a_terminal_with_the_status(monkeypatch):
    buffer = _terminal(monkeypatch)
    with report.bar(3, "autoencoder") as shown:
        for epoch in range(3):
            shown.advance(f"loss {0.5 / (epoch + 1):.3g}")
    text = buffer.getvalue()
    assert "autoencoder" in text and "3/3" in text and "loss 0.167" in text


def test_bar_is_silent_when_quiet_or_not_a_terminal(monkeypatch):
    buffer = _terminal(monkeypatch)
    report.set_quiet(True)
    with report.bar(2, "autoencoder") as shown:
        shown.advance("loss 1")
    report.set_quiet(False)
    monkeypatch.setattr(report.sys.stderr, "isatty", lambda: False, raising=False)
    with report.bar(2, "autoencoder") as shown:
        shown.advance("loss 1")
    assert buffer.getvalue() == ""
