"""The setup every training command shares: which model, which data, which cache.

`finetune`, `lr-find` and `check` (and `cache-features` for its model and data) start the same
way: take the model path and the record piped in from the previous command (`upstream`), use
the feature cache named in that record unless told not to, refuse a run with no data, load the
training and validation sets and the base model. `prepare_run` does it once for all of them,
so that a script gets the same behaviour as the shell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from reuse.core.errors import UsageError


@dataclass
class RunSetup:
    """What a training command works on, loaded.

    Attributes:
        model_path: the base model's path (from the argument or the upstream record).
        upstream: the record piped in from the previous command, or None.
        model: the loaded Keras base model.
        data: the training Dataset, or None when training from `features` only.
        val: the validation Dataset (the class selection of `data` applies, not its
            per-class or row limits), or None.
        features: the feature cache to train from, or None.
        cut: the cut to use: the one given, else the one the upstream record proposes.
        output_key: the output of the base model that is reused (None: its only output).
    """

    model_path: str
    upstream: dict | None
    model: object
    data: object
    val: object
    features: Path | None
    cut: str | None
    output_key: str | None = None


def prepare_run(
    model_path: str | os.PathLike,
    data_options,
    *,
    upstream: dict | None = None,
    val: str | os.PathLike | None = None,
    features: str | os.PathLike | None = None,
    no_cache: bool = False,
    cut: str | None = None,
    unsafe: bool = False,
    what: str = "training data",
    output_key: str | None = None,
) -> RunSetup:
    """Resolve and load a training command's model, data and cache.

    Args:
        model_path: the base model file or SavedModel folder.
        data_options: a `reuse.data.DataOptions` (its `data` may be None with `features`).
        upstream: the pipeline record of the previous command: its `features` is used unless
            `features` is given or `no_cache`; its `cut_finetune` is the default cut.
        val: validation data path, read with the same options (class selection kept,
            `per_class` and `limit` dropped).
        what: what the "no data" error calls the data ("training data").
        output_key: the output to reuse of a base model with several (`--output-key`); the
            upstream record's `output_key` when None.

    Raises:
        UsageError: neither data nor a feature cache, or a base model with several outputs
        and no `output_key`. DataError, ModelLoadError: from the readers.
    """
    from reuse.formats import model_io
    from reuse.formats.outputs import require_single_output

    upstream = upstream or {}
    if features is None and upstream.get("features") and not no_cache:
        features = upstream["features"]
    if data_options.data is None and features is None:
        raise UsageError(f"no {what}", "pass --data DATA (and optionally --features CACHE)")
    dataset = data_options.load() if data_options.data is not None else None
    val_set = (
        replace(data_options, per_class=None, limit=None).load(val) if val is not None else None
    )
    output_key = output_key or upstream.get("output_key")
    model = model_io.load_model(model_path, unsafe=unsafe, output_key=output_key)
    require_single_output(model)
    return RunSetup(
        model_path=str(model_path),
        upstream=upstream or None,
        model=model,
        data=dataset,
        val=val_set,
        features=Path(features) if features is not None else None,
        cut=cut or upstream.get("cut_finetune"),
        output_key=output_key,
    )
