"""What `reuse inspect` returns: the `Inspection` result and the columns of a model's layer list.

Every describer (`fast`, `summary` through `describe`, `savedmodel`, `weights`, `cache`) builds
an `Inspection`; the CLI renders it as a table or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Inspection:
    """A description of one path: a table (columns and rows) plus totals and facts.

    Attributes:
        kind: "model", "weights", "savedmodel" or "cache".
        path: the path described ("" for an in-memory model).
        columns: the row keys, in display order.
        rows: one dict per layer, tensor, variable or dataset.
        totals: parameter counts for models ("trainable_params", "frozen_params",
            "total_params"); empty otherwise.
        info: extra facts shown above/below the table (format, signatures, cache metadata).
        fast_path: True when the rows came from the file without TensorFlow.
    """

    kind: str
    path: str
    columns: list[str]
    rows: list[dict]
    totals: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    fast_path: bool = False


def param_totals(trainable: int, frozen: int) -> dict:
    """The `totals` of a model: trainable, frozen and total parameter counts (values)."""
    return {
        "trainable_params": trainable,
        "frozen_params": frozen,
        "total_params": trainable + frozen,
    }


# The columns of a model's layer list, shared by the full load and the TensorFlow-free path.
MODEL_COLUMNS = ["index", "name", "class", "output_shape", "params", "trainable"]
