"""The `reuse` command line: registers one module per command; the library does the work.

Nothing here imports TensorFlow, so `reuse --help` answers at once.
"""

from __future__ import annotations

import typer

from reuse._version import __version__

app = typer.Typer(
    name="reuse",
    help="Transfer learning on Keras 3 from the shell: inspect a trained network, freeze its "
    "lower layers, cache what they compute, and fine-tune a new head. Commands chain in "
    "pipelines: each prints a one-line JSON record that the next one reads from stdin.",
    no_args_is_help=True,
    add_completion=False,
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
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Silence notes and progress on stderr."),
) -> None:
    from reuse import report

    report.set_quiet(quiet)


def _register() -> None:
    from reuse.cli import cache_cmd, finetune_cmd, freeze_cmd, import_cmd, inspect_cmd

    app.command("inspect")(inspect_cmd.inspect_command)
    app.command("freeze")(freeze_cmd.freeze_command)
    app.command("unfreeze")(freeze_cmd.unfreeze_command)
    app.command("cache-features")(cache_cmd.cache_features_command)
    app.command("finetune")(finetune_cmd.finetune_command)
    app.command("evaluate")(finetune_cmd.evaluate_command)
    app.command("predict")(finetune_cmd.predict_command)
    app.command("import-weights")(import_cmd.import_weights_command)


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
