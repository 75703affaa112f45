"""Renaming rules for imported tensors (`--map`): parse them, read mapping files, apply them.

A rule is `src=dst`: `src` is a regular expression that must match fully, `dst` may use its
groups (`features\\.(\\d+)=conv\\1`), and an empty `dst` drops the tensor. Rules come from
strings, (src, dst) pairs, a dict, or a JSON / TOML file. The name helpers here also split a
tensor name into its layer part and its parameter (`fc1.weight` -> `fc1`, `weight`).

    rules = parse_mapping(["fc1=hidden1", "rules.toml"])
    apply_mapping("fc1.weight", "fc1", "weight", rules)   # ("hidden1", "weight", True)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from reuse.core.errors import UsageError

Rules = list[tuple[re.Pattern, str]]


def parse_mapping(mapping) -> Rules:
    """Renaming rules from `src=dst` strings, pairs, a dict, or a JSON / TOML file.

    Example:
        >>> parse_mapping(["fc1=hidden1", r"features\\.(\\d+)=conv\\1"])

    A file holds {"src": "dst", ...} (JSON), or `src = "dst"` lines, optionally in a `[map]`
    table (TOML). Rules are tried in order on the whole tensor name, then on its layer
    part; the first full match wins.

    Args:
        mapping: None (no rules), one string or path, a dict {src: dst}, or a list of
            `src=dst` strings, (src, dst) pairs and `.json` / `.toml` paths.

    Returns:
        [(compiled src pattern, dst template)], in the order given.

    Raises:
        UsageError: a rule without `=`, a bad regex, or an unreadable file.
    """
    if mapping is None:
        return []
    if isinstance(mapping, (str, os.PathLike)):
        mapping = [mapping]
    if isinstance(mapping, dict):
        pairs = list(mapping.items())
    else:
        pairs = []
        for item in mapping:
            if isinstance(item, (tuple, list)) and len(item) == 2:
                pairs.append((str(item[0]), str(item[1])))
                continue
            text = str(item)
            if "=" not in text and Path(text).suffix.lower() in (".json", ".toml"):
                pairs.extend(_mapping_file(Path(text)))
            elif "=" in text:
                src, dst = text.split("=", 1)
                pairs.append((src.strip(), dst.strip()))
            else:
                raise UsageError(
                    f"--map rules are written src=dst. Received: --map {text!r}",
                    "e.g. --map 'fc1=hidden1', --map 'features\\.(\\d+)=conv\\1', or --map rules.json",
                )
    rules = []
    for src, dst in pairs:
        try:
            rules.append((re.compile(src), dst))
        except re.error as err:
            raise UsageError(
                f"--map source {src!r} is not a valid regex ({err})", "escape dots as \\."
            ) from None
    return rules


def _mapping_file(p: Path) -> list[tuple[str, str]]:
    try:
        text = p.read_text()
    except OSError:
        raise UsageError(f"--map file {p} cannot be read", "check the path") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
            data = data.get("map", data)
    except ValueError as err:
        raise UsageError(
            f"--map file {p} is not valid {p.suffix[1:].upper()} ({err})", "fix the file"
        ) from None
    if isinstance(data, list):
        return [(str(a), str(b)) for a, b in data]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(
            f'--map file {p} must hold {{"src": "dst", ...}}', "write one string per source name"
        )
    return list(data.items())


def apply_mapping(
    name: str, key: str, param: str, rules: Rules
) -> tuple[str | None, str | None, bool]:
    """The (layer key, parameter) of a tensor after renaming, and whether a rule applied.

    A rule that matches the whole tensor name `name` wins over one that matches its layer
    part `key`. A whole-name rule may rename the parameter too (`a.w=b/kernel`); a layer-part
    rule keeps `param`. A key of None means a rule dropped the tensor (empty `dst`).
    """
    for pattern, dst in rules:
        m = pattern.fullmatch(name)
        if m:
            new = m.expand(dst)
            if not new:
                return None, None, True
            k, p = split_name(new)
            return (k, p or param, True) if p else (new, param, True)
    for pattern, dst in rules:
        m = pattern.fullmatch(key)
        if m:
            new = m.expand(dst)
            return (new or None), param, True
    return key, param, False


def split_name(name: str) -> tuple[str, str]:
    """Split a tensor name at its last `/` or `.`: (`model.fc1`, `weight`); ("x", "") when none."""
    cut = max(name.rfind("/"), name.rfind("."))
    if cut < 0:
        return name, ""
    return name[:cut], name[cut + 1 :]


def compile_layers(layers: str | None) -> re.Pattern | None:
    """The `--layers` selector as a compiled regex, or None (every layer).

    Raises:
        UsageError: not a valid regex.
    """
    if layers is None:
        return None
    try:
        return re.compile(layers)
    except re.error as err:
        raise UsageError(
            f"--layers is not a valid regex ({err}). Received: --layers {layers!r}",
            "e.g. --layers 'hidden[123]'",
        ) from None


def selected(selector: re.Pattern | None, path: str) -> bool:
    """True when `selector` (from `compile_layers`) fully matches the layer path or its last part."""
    return selector is None or bool(
        selector.fullmatch(path) or selector.fullmatch(path.rsplit("/", 1)[-1])
    )
