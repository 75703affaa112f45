"""Fine-tuning options from a file: `reuse finetune --config best.json`.

The file is JSON. Its options are the `finetune` object of a `reuse tune` result (best.json),
or, in a file written by hand, the top-level object itself. Keys are `FinetuneOptions` fields,
spelled as the flags are or with underscores (`early-stopping` or `early_stopping`):

    {"finetune": {"lr": 0.0021, "l2": 1e-05, "optimizer": "adam", "epochs": 20,
                  "early_stopping": 5, "unfreeze": "top:1", "dropout": 0.1}}

A flag given on the command line overrides the file (`apply_config`). `seed` and `val_split`
are not read from a file: they also choose the data rows, so they stay flags.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import fields
from pathlib import Path

from reuse.core.errors import DataError, UsageError
from reuse.training.options import FinetuneOptions

# Options a configuration file may not set, with why.
NOT_IN_CONFIG = {
    "seed": "it also chooses the data rows; give --seed on the command line",
    "val_split": "it also chooses the data rows; give --val-split on the command line",
}


def _field_types() -> dict[str, str]:
    hints = typing.get_type_hints(FinetuneOptions)
    return {f.name: hints[f.name] for f in fields(FinetuneOptions)}


def read_config(path: str | os.PathLike) -> dict:
    """The fine-tuning options in the JSON file `path`, as {field name: value}.

    Example:
        >>> read_config("best.json")
        {'lr': 0.0021, 'l2': 1e-05, 'optimizer': 'adam', 'epochs': 20}

    Raises:
        DataError: the file is missing, not JSON, or not an object of options.
        UsageError: an unknown key (with a "did you mean"), a key that must stay a flag, or a
            value of the wrong type (a number expected, text received).
    """
    p = Path(path)
    try:
        document = json.loads(p.read_text())
    except FileNotFoundError:
        raise DataError(
            f"--config {p}: no such file", "pass the best.json that `reuse tune` wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"--config {p} is not a JSON file ({str(err).splitlines()[0][:100]})",
            "pass the best.json that `reuse tune` wrote",
        ) from None
    section = document.get("finetune", document) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise DataError(
            f"--config {p} holds no object of fine-tuning options",
            'write {"finetune": {"lr": 0.001, ...}}, as `reuse tune` does',
        )
    types = _field_types()
    out = {}
    for raw_key, value in section.items():
        key = str(raw_key).replace("-", "_")
        if key in NOT_IN_CONFIG:
            raise UsageError(
                f"--config {p}: `{raw_key}` cannot be set in a file", NOT_IN_CONFIG[key]
            )
        if key not in types:
            from reuse.core.spec_grammar import did_you_mean

            allowed = sorted(k for k in types if k not in NOT_IN_CONFIG)
            raise UsageError(
                f"--config {p}: unknown option `{raw_key}`", did_you_mean(key, allowed)
            )
        out[key] = _coerce(p, key, value, types[key])
    return out


def _coerce(path: Path, key: str, value, kind):
    """`value` as the field's type: ints and floats from numbers, tuples from lists."""
    if value is None:
        return None
    args = set(typing.get_args(kind)) or {kind}
    wrong = UsageError(
        f"--config {path}: `{key}` must be {' or '.join(sorted(a.__name__ for a in args if a is not type(None)))}. "
        f"Received: {value!r}",
        "fix the value in the file, or give the flag on the command line",
    )
    if bool in args:
        if not isinstance(value, bool):
            raise wrong
        return value
    if isinstance(value, bool):
        raise wrong
    if int in args and isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    if float in args and isinstance(value, int | float):
        return float(value)
    if tuple in args and isinstance(value, list):
        return tuple(value)
    if str in args and isinstance(value, str):
        return value
    raise wrong


def apply_config(options: FinetuneOptions, values: dict, given: set[str]) -> list[str]:
    """Set each option of `values` on `options`, except those in `given` (the flags typed on
    the command line, which win). Returns the names taken from the file."""
    taken = []
    for key, value in values.items():
        if key not in given:
            setattr(options, key, value)
            taken.append(key)
    return taken
