"""`reuse lora merge`: fold the LoRA adapters a `finetune --lora R --lora-save adapters` run
wrote into the base model, giving the plain fine-tuned model (the library does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli.common import JsonOpt, UnsafeOpt, command, emit_record

app = typer.Typer(
    name="lora",
    help="Merge LoRA adapters into their base model",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@command
def lora__merge_command(
    base: Annotated[
        str, typer.Argument(help="The base model the adapters were trained on.", metavar="BASE")
    ],
    adapters: Annotated[
        Path,
        typer.Argument(help="The .npz of `finetune --lora-save adapters`.", metavar="ADAPTERS"),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Where to write the merged model. Default: <base>.tuned.keras"
        ),
    ] = None,
    unsafe: UnsafeOpt = False,
    json_flag: JsonOpt = False,
) -> None:
    """Apply LoRA adapters to their base model: the base cut where the run cut it, the trained
    head on top, each adapter's update folded into its kernel. The result is a plain model.

    Refuses a base whose adapted layers differ from the ones the adapters were trained on.

    Examples:

        reuse finetune base.keras --data train.npz --lora 4 --lora-save adapters -o run.npz

        reuse lora merge base.keras run.npz -o tuned.keras
    """
    from reuse.core import record, report
    from reuse.core.atomic import check_output_path
    from reuse.core.naming import default_output
    from reuse.formats.model_io import check_model_output, load_model, save_model
    from reuse.training.lora import merge_adapters

    out = Path(output) if output else default_output(base, "tuned")
    check_output_path(out, [base, adapters])
    check_model_output(out)
    model = merge_adapters(load_model(base, unsafe=unsafe), adapters)
    save_model(model, out)
    report.info(f"merged {adapters} into {base} -> {out}")
    emit_record(
        record.make_record("lora merge", None, model=out, base=str(base), adapters=str(adapters)),
        json_flag,
        human=lambda: typer.echo(str(out)),
    )
