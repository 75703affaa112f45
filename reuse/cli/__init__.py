"""The `reuse` command line: registers one module per command; the library does the work.

Nothing here imports TensorFlow, so `reuse --help` answers at once.
"""

from __future__ import annotations

import typer

from reuse._version import __version__
from reuse.cli.help_format import ReuseCommand, ReuseGroup

EXAMPLES = """Examples:

\b
  reuse inspect models/digits_0to4.keras
  reuse freeze models/digits_0to4.keras --upto hidden2 -o frozen.keras
  reuse cache-features frozen.keras --data train.npz -o feats.h5
  reuse finetune frozen.keras --features feats.h5 --data train.npz
  reuse evaluate frozen.tuned.keras --data test.npz

`reuse COMMAND --help` lists a command's options. `python -m reuse.data.demo DIR` writes the
train/valid/test.npz files above; `make demo` runs the whole walk-through.
Shell completion: `reuse --install-completion`."""

app = typer.Typer(
    name="reuse",
    help="Transfer learning on Keras 3 from the shell: inspect a trained network, freeze its "
    "lower layers, cache what they compute, and fine-tune a new head. Commands chain in "
    "pipelines: each prints a one-line JSON record that the next one reads from stdin.",
    epilog=EXAMPLES,
    cls=ReuseGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"reuse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Silence notes and progress on stderr."
    ),
) -> None:
    from reuse.core import report

    report.set_quiet(quiet)


def _keep_examples(func):
    """Mark each example line in a docstring so Click prints it as written, unwrapped."""
    import re

    doc = func.__doc__ or ""
    head, sep, tail = doc.partition("Examples:")
    if sep:
        tail = re.sub(r"\n\n([ \t]+)(?=\S)", lambda m: f"\n\n{m.group(1)}\b\n{m.group(1)}", tail)
        func.__doc__ = head + sep + tail
    return func


def _register() -> None:
    from reuse.cli import (
        cache_cmd,
        check_cmd,
        evaluate_cmd,
        finetune_cmd,
        freeze_cmd,
        import_cmd,
        inspect_cmd,
        lora_cmd,
        lr_find_cmd,
        plot_cmd,
        pretrain_cmd,
        quantize_cmd,
        sparsify_cmd,
        tune_cmd,
    )

    def command(name: str):
        return lambda func: app.command(name, cls=ReuseCommand)(_keep_examples(func))

    command("inspect")(inspect_cmd.inspect_command)
    command("freeze")(freeze_cmd.freeze_command)
    command("unfreeze")(freeze_cmd.unfreeze_command)
    command("cache-features")(cache_cmd.cache_features_command)
    command("finetune")(finetune_cmd.finetune_command)
    command("evaluate")(evaluate_cmd.evaluate_command)
    command("predict")(evaluate_cmd.predict_command)
    command("import-weights")(import_cmd.import_weights_command)
    command("lr-find")(lr_find_cmd.lr_find_command)
    command("check")(check_cmd.check_command)
    command("plot")(plot_cmd.plot_command)
    command("sparsify")(sparsify_cmd.sparsify_command)
    command("quantize")(quantize_cmd.quantize_command)
    lora_cmd.app.command(
        "merge", cls=ReuseCommand, short_help="Apply LoRA adapters to their base model"
    )(_keep_examples(lora_cmd.lora__merge_command))
    app.add_typer(lora_cmd.app, name="lora")
    app.add_typer(pretrain_cmd.app, name="pretrain")
    command("tune")(tune_cmd.tune_command)


_register()


def normalize_argv(args: list[str]) -> list[str]:
    """Let --quiet / -q stand anywhere on the line: move it before the command name."""
    head, rest = [], []
    for i, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[i:])
            break
        (head if arg in ("--quiet", "-q") else rest).append(arg)
    return head[:1] + rest


def main() -> None:
    """Console-script entry point."""
    import sys

    app(args=normalize_argv(sys.argv[1:]), prog_name="reuse")
