"""Parsing shared by the optimizer and schedule specs: `NAME[:key=value,...]`.

One parser, so that `--optimizer` and `--schedule` accept the same shapes and word their
errors the same way. Values stay strings here; each spec converts and checks its own keys
with the `number`, `integer`, `boolean` and `numbers` helpers, which echo the value they got.
"""

from __future__ import annotations

import difflib
import math

from reuse.core.errors import SpecError


def did_you_mean(name: str, candidates: list[str]) -> str:
    """A hint that lists close spellings first, then every valid name."""
    near = closest(name, candidates, n=3)
    valid = ", ".join(candidates)
    if near:
        return f"did you mean {' or '.join(repr(n) for n in near)}? Valid: {valid}"
    return f"valid: {valid}"


def split_named(text: str, what: str, option: str) -> tuple[str, dict[str, str]]:
    """Split `name:key=value,key=value` into the name and an ordered dict of raw values.

    Raises:
        SpecError: empty text, a key without `=`, an empty key, or a key given twice.
    """
    text = (text or "").strip()
    if not text:
        raise SpecError(f"{option} is empty", f"give a {what} name, e.g. {option} adam")
    name, _, rest = text.partition(":")
    name = name.strip().lower().replace("_", "-")
    params: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq or not key:
                raise SpecError(
                    f"{option}: '{item.strip()}' is not key=value. Received: {text}",
                    f"write {option} {name}:key=value,key=value",
                )
            if key in params:
                raise SpecError(
                    f"{option}: `{key}` is given twice. Received: {text}", "give each key once"
                )
            params[key] = value.strip()
    return name, params


def number(
    key: str,
    value: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    example: str = "0.1",
) -> float:
    """`value` as a finite float within the bounds; the error names `key` and echoes `value`."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpecError(
            f"`{key}` must be a number. Received: {key}={value}", f"e.g. {key}={example}"
        ) from None
    if not math.isfinite(out):
        raise SpecError(
            f"`{key}` must be a finite number. Received: {key}={value}", f"e.g. {key}={example}"
        )
    _check_bounds(key, value, out, lo, hi, lo_open, hi_open)
    return out


def integer(key: str, value: str, *, lo: int | None = None) -> int:
    """`value` as an int (`2`, `2.0` and `1e3` accepted) no smaller than `lo`."""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        as_float = math.nan
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise SpecError(
            f"`{key}` must be a whole number. Received: {key}={value}", f"e.g. {key}=100"
        )
    out = int(as_float)
    _check_bounds(key, value, out, lo, None, False, False)
    return out


def boolean(key: str, value: str) -> bool:
    """`true/false`, `yes/no`, `1/0`, `on/off` as a bool."""
    v = str(value).strip().lower()
    if v in ("true", "yes", "1", "on", "t", "y"):
        return True
    if v in ("false", "no", "0", "off", "f", "n"):
        return False
    raise SpecError(f"`{key}` must be true or false. Received: {key}={value}", f"e.g. {key}=true")


def numbers(key: str, value: str) -> list[float]:
    """A `;`-separated list of numbers (`,` already separates keys)."""
    items = [v.strip() for v in str(value).split(";") if v.strip()]
    if not items:
        raise SpecError(
            f"`{key}` must be a ;-separated list of numbers. Received: {key}={value}",
            f"e.g. {key}=100;200",
        )
    return [number(key, v) for v in items]


def _check_bounds(key, raw, out, lo, hi, lo_open, hi_open) -> None:
    if lo is not None and (out < lo or (lo_open and out == lo)):
        op = ">" if lo_open else ">="
        raise SpecError(
            f"`{key}` must be {op} {lo:g}. Received: {key}={raw}", f"give a value {op} {lo:g}"
        )
    if hi is not None and (out > hi or (hi_open and out == hi)):
        op = "<" if hi_open else "<="
        raise SpecError(
            f"`{key}` must be {op} {hi:g}. Received: {key}={raw}", f"give a value {op} {hi:g}"
        )


def closest(name: str, candidates: list[str], n: int = 5) -> list[str]:
    """Real names near `name`: close spellings first, then names that contain it."""
    short = {c.rsplit("/", 1)[-1]: c for c in candidates}
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    found += [short[s] for s in difflib.get_close_matches(name, list(short), n=n, cutoff=0.5)]
    found += [c for c in candidates if name.lower() in c.lower()]
    unique: list[str] = []
    for c in found:
        if c not in unique:
            unique.append(c)
    return unique[:n]
