"""The pipeline record: one JSON line that each `reuse` command reads from stdin and writes.

A command that writes an artifact prints a record on stdout (when stdout is not a terminal,
or always with `--json`). The next command reads it when its model argument is `-` or
omitted and stdin is a pipe. Fields (all optional except `reuse` and `command`):

    reuse      version of reuse that wrote the record
    command    the command that wrote it ("freeze", "cache-features", ...)
    model      absolute path of the model the next step should use
    frozen     names of the non-trainable layers of that model
    trainable  names of the layers of that model that train (layers with parameters only)
    cut        the cut layer (top of the frozen part / of the reused layers)
    features   absolute path of a feature cache (HDF5)
    taps       layer names cached in `features`
    rows       number of rows cached
    data       path of the data the command read
    metrics    {"loss": ..., "accuracy": ...}
    history    path of a training history (CSV/JSON)
    report     path of a JSON report
    lr         a suggested learning rate (from lr-find)
    augment, image_shape, seed
               the augmentation a command used (canonical `--augment` spec, the H,W,C flat
               rows were viewed as, the seed): written by finetune, lr-find, check and
               pretrain (a command that trains drops the upstream values and writes its own),
               by evaluate / predict when they ran `--tta` (the default spec of a later
               `--tta`), and (augment) by cache-features with --views
    tta        the K of evaluate / predict --tta K (dropped when they ran without it)

Fields a command does not own pass through from the record it read, so `features` written by
`cache-features` reaches `finetune` through any step that does not change the model.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from reuse._version import __version__
from reuse.core import jsonio
from reuse.core.errors import UsageError

# Fields that describe the model: a command that writes a new model drops the old values.
MODEL_BOUND_FIELDS = (
    "features",
    "taps",
    "rows",
    "cut",
    "frozen",
    "trainable",
    "metrics",
    "views",
    "output_key",
)


# The augmentation a command trained with: a command that trains owns these fields (it drops
# the upstream values, even when it used no augmentation, and writes its own).
AUGMENT_FIELDS = ("augment", "image_shape", "seed")


def augment_fields(augment, image_shape, seed) -> dict:
    """The record fields of an augmentation: `augment` (canonical spec), `image_shape` (a
    list), `seed`; a None value is left out (and the upstream value is dropped by the caller)."""
    return {
        "augment": augment or None,
        "image_shape": list(image_shape) if image_shape else None,
        "seed": seed,
    }


def make_record(command: str, upstream: dict | None = None, *, drop=(), **fields: Any) -> dict:
    """A new record for `command`: the upstream fields, minus `drop`, updated with `fields`."""
    record = {k: v for k, v in (upstream or {}).items() if k not in drop}
    record.update({k: v for k, v in fields.items() if v is not None})
    record["reuse"] = __version__
    record["command"] = command
    for key in ("model", "features", "data", "history", "report"):
        if isinstance(record.get(key), (str, os.PathLike)):
            record[key] = str(Path(record[key]).resolve())
    return record


def dumps(record: dict) -> str:
    """The record as one JSON line (NumPy values and paths converted by `reuse.core.jsonio`).

    Raises:
        TypeError: a field value JSON cannot hold.
    """
    return jsonio.dumps(record, separators=(", ", ": "))


def parse(text: str, source: str = "stdin") -> dict:
    """Parse a record; the last non-empty line counts (earlier lines may be other output)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"{source} holds no reuse record", "pass a model path instead")
    try:
        record = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise UsageError(
            f"{source} is not a reuse record (expected one JSON line, got {lines[-1][:60]!r})",
            "pipe the output of another reuse command, or pass a model path",
        ) from None
    if not isinstance(record, dict) or "reuse" not in record:
        raise UsageError(
            f"{source} holds JSON that is not a reuse record",
            "pipe the output of another reuse command, or pass a model path",
        )
    return record


def read_stdin() -> dict | None:
    """The record on stdin, or None when stdin is a terminal or empty."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return None
    try:
        if stdin.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    text = stdin.read()
    if not text.strip():
        return None
    return parse(text)


def _stdin_is_redirected() -> bool:
    """True when stdin is a pipe or a file (not a terminal, not closed)."""
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and not stdin.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_input(argument: str | None, key: str = "model") -> tuple[str, dict | None]:
    """Where the input comes from: a path argument, or the record on stdin.

    Returns the path and the upstream record (None when a path was given).
    """
    if argument not in (None, "-"):
        return argument, None
    record = read_stdin()
    if record is None and _stdin_is_redirected():
        # `a | reuse b` where `a` failed: its error is above, and stdin is empty.
        raise UsageError(
            f"no {key} given, and stdin is empty (in a pipeline: the command before this one "
            "printed no record; its error is above)",
            f"fix that command, or pass a {key} path",
        )
    if record is None:
        raise UsageError(
            f"no {key} given",
            f"pass a {key} path, or pipe the record of another reuse command into this one",
        )
    if not record.get(key):
        raise UsageError(
            f"the record on stdin (from `reuse {record.get('command', '?')}`) has no {key}",
            f"pass a {key} path",
        )
    return record[key], record


def wants_json(json_flag: bool) -> bool:
    """A record goes to stdout as JSON when asked, or when stdout is not a terminal."""
    if json_flag:
        return True
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True
