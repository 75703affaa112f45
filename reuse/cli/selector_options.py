"""Layer selector options (`--upto`, `--from/--to`, `--layers`, `--index`, `--all`,
`--except-top`), declared once for `freeze`, `unfreeze` and `sparsify`."""

from __future__ import annotations

from typing import Annotated

import typer

UptoOpt = Annotated[
    str | None,
    typer.Option(
        "--upto",
        help="From the first layer up to and including NAME (outer/inner for nested models).",
        metavar="NAME",
        show_default=False,
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="First layer of a range (with --to; alone: up to the top).",
        metavar="NAME",
        show_default=False,
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Last layer of a range, inclusive (with --from; alone: from the bottom).",
        metavar="NAME",
        show_default=False,
    ),
]
LayersOpt = Annotated[
    str | None,
    typer.Option(
        "--layers",
        help="Regex that fully matches layer names, e.g. 'hidden[123]' or 'block_[1-3]_.*'. "
        "A nested model that matches is taken whole.",
        metavar="REGEX",
        show_default=False,
    ),
]
IndexOpt = Annotated[
    str | None,
    typer.Option(
        "--index",
        help="Python slice over the numbered layers of `reuse inspect`, e.g. 0:3 or :-2 "
        "(negative counts from the top).",
        metavar="A:B",
        show_default=False,
    ),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every layer.")]
ExceptTopOpt = Annotated[
    int | None,
    typer.Option(
        "--except-top", help="Every layer except the top N.", metavar="N", show_default=False
    ),
]
