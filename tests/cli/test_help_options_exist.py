"""Every `--option` an option's help text names is an option of that same command (a help text
shared between commands used to promise --per-class to predict, --seed to quantize, --mode to
pretrain pairs). Mentions of another command's options (`finetune --config`) are allowed.
"""

from __future__ import annotations

import re

import typer.main

from reuse.cli import app


def _commands(cmd, name=""):
    if hasattr(cmd, "commands"):
        for sub, child in cmd.commands.items():
            yield from _commands(child, f"{name} {sub}".strip())
    else:
        yield name, cmd


def test_options_named_in_help_exist():
    missing = []
    for name, cmd in _commands(typer.main.get_command(app)):
        declared = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        for param in cmd.params:
            for m in re.finditer(r"(\S+ )?(--[a-z][a-z0-9-]*)", getattr(param, "help", None) or ""):
                other_command = "finetune" in (m.group(1) or "")
                if m.group(2) not in declared and not other_command:
                    missing.append(f"reuse {name} {param.opts[0]}: {m.group(0).strip()!r}")
    assert missing == []


def test_quantize_takes_the_seed_its_limit_help_names():
    cmd = typer.main.get_command(app).commands["quantize"]
    assert "--seed" in {opt for p in cmd.params for opt in p.opts}


def test_metavars_match_the_help_text():
    """--unfreeze's metavar lists top:N, which its help describes; --early-stopping's help
    names its value N, as its metavar does (it said PATIENCE)."""
    from tests.helpers import cli

    for command in (["finetune"], ["lr-find"], ["check"], ["tune"], ["pretrain", "pairs"]):
        result = cli([*command, "--help"], input=None)
        assert result.exit_code == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "PATIENCE" not in text, command
        if "--unfreeze" in text:
            assert "--unfreeze none|all|top:N|gradual" in text, command


def test_subcommands_follow_the_placeholder_convention():
    """`lora merge` and `pretrain autoencoder|pairs` showed Typer's `<int>` / `<str>` /
    `<path>`; pretrain's --layers (units) showed the selector's REGEX, --lr lr-find's record."""
    from tests.helpers import cli

    for command in (["lora", "merge"], ["pretrain", "autoencoder"], ["pretrain", "pairs"]):
        result = cli([*command, "--help"])
        assert result.exit_code == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert re.search(r"<(int|str|path|float)>", text) is None, (command, text)
        if command[0] == "pretrain":
            assert "--layers N[,N...]" in text and "--arch dense|conv|auto" in text
            assert "--lr F " in text and "REGEX" not in text
