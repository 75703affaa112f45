"""reuse.core.record: the one-line JSON record that chains `reuse` commands through pipes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from reuse._version import __version__
from reuse.core import record
from reuse.core.errors import UsageError


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False):
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_make_record_sets_version_and_command_and_resolves_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = record.make_record("freeze", model="m.keras", cut="hidden2", lr=None, rows=3)
    assert rec["reuse"] == __version__
    assert rec["command"] == "freeze"
    assert rec["model"] == str(tmp_path / "m.keras")
    assert rec["cut"] == "hidden2" and rec["rows"] == 3
    assert "lr" not in rec  # None fields are left out


def test_make_record_passes_upstream_fields_through_minus_drop(tmp_path):
    upstream = {
        "reuse": "0.0.1",
        "command": "cache-features",
        "model": str(tmp_path / "a.keras"),
        "features": str(tmp_path / "f.h5"),
        "taps": ["hidden2"],
        "data": str(tmp_path / "d.npz"),
    }
    kept = record.make_record("inspect", upstream)
    assert kept["features"] == upstream["features"] and kept["taps"] == ["hidden2"]
    assert kept["command"] == "inspect" and kept["reuse"] == __version__

    new_model = record.make_record(
        "finetune", upstream, drop=record.MODEL_BOUND_FIELDS, model=tmp_path / "b.keras"
    )
    assert new_model["model"] == str(tmp_path / "b.keras")
    assert "features" not in new_model and "taps" not in new_model
    assert new_model["data"] == upstream["data"]  # not bound to the model
    assert upstream["command"] == "cache-features"  # the upstream dict is not changed


def test_dumps_is_one_line_with_numpy_values_and_paths(tmp_path):
    rec = record.make_record(
        "evaluate",
        metrics={"loss": np.float32(0.5), "accuracy": np.float64(0.75)},
        rows=np.int64(7),
        shape=np.array([2, 3]),
        report=Path(tmp_path / "r.json"),
    )
    text = record.dumps(rec)
    assert "\n" not in text
    back = json.loads(text)
    assert back["metrics"] == {"loss": 0.5, "accuracy": 0.75}
    assert back["rows"] == 7 and back["shape"] == [2, 3]
    assert back["report"] == str(tmp_path / "r.json")


def test_dumps_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        record.dumps({"reuse": "x", "command": "x", "bad": object()})


def test_parse_reads_the_last_nonempty_line():
    rec = {"reuse": "1", "command": "freeze", "model": "/m.keras"}
    text = "some progress line\n" + json.dumps(rec) + "\n\n"
    assert record.parse(text) == rec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "stdin holds no reuse record"),
        ("\n  \n", "stdin holds no reuse record"),
        ("{not json", "stdin is not a reuse record (expected one JSON line"),
        ('["a list"]', "stdin holds JSON that is not a reuse record"),
        ('{"command": "freeze"}', "stdin holds JSON that is not a reuse record"),
    ],
)
def test_parse_refuses_bad_input(text, message):
    with pytest.raises(UsageError) as info:
        record.parse(text)
    assert info.value.message.startswith(message)
    assert info.value.hint  # says what to do instead


def test_read_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin('{"reuse": "1", "command": "freeze"}\n'))
    assert record.read_stdin() == {"reuse": "1", "command": "freeze"}
    monkeypatch.setattr("sys.stdin", _Stdin("   \n"))
    assert record.read_stdin() is None
    monkeypatch.setattr("sys.stdin", _Stdin('{"reuse": "1"}', tty=True))
    assert record.read_stdin() is None
    monkeypatch.setattr("sys.stdin", None)
    assert record.read_stdin() is None


def test_resolve_input_prefers_the_argument(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin('{"reuse": "1", "command": "x", "model": "/up"}'))
    assert record.resolve_input("given.keras") == ("given.keras", None)


@pytest.mark.parametrize("argument", [None, "-"])
def test_resolve_input_chains_from_the_record_on_stdin(monkeypatch, argument):
    upstream = record.make_record("freeze", model="/tmp/frozen.keras", cut="hidden2")
    monkeypatch.setattr("sys.stdin", _Stdin("Wrote it\n" + record.dumps(upstream) + "\n"))
    path, rec = record.resolve_input(argument)
    assert path == "/tmp/frozen.keras"
    assert rec == upstream
    # the next command's record carries the upstream fields on
    assert record.make_record("inspect", rec)["cut"] == "hidden2"


def test_resolve_input_without_argument_or_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=True))
    with pytest.raises(UsageError, match="no model given"):
        record.resolve_input(None)


def test_resolve_input_record_without_the_key(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin('{"reuse": "1", "command": "lr-find"}'))
    with pytest.raises(UsageError, match=r"from `reuse lr-find`\) has no features"):
        record.resolve_input("-", key="features")


def test_resolve_input_bad_json_on_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin("Epoch 1/3 loss 0.2\n"))
    with pytest.raises(UsageError, match="stdin is not a reuse record"):
        record.resolve_input(None)


def test_wants_json(monkeypatch):
    assert record.wants_json(True)
    monkeypatch.setattr("sys.stdout", _Stdin("", tty=True))
    assert not record.wants_json(False)
    monkeypatch.setattr("sys.stdout", _Stdin("", tty=False))
    assert record.wants_json(False)
