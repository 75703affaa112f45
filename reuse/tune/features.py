"""Fast trials: which cached tap each kind of trial can train from, and the cache they share.

A trial trains the head (and the top reused layers it unfreezes) from the deepest cached tap
below its lowest trainable layer, so the frozen layers below never run: most of a search's
speed comes from there. `plan_taps` finds that tap for every (cut, unfreeze) the space allows;
`ensure_cache` writes one feature cache with all of them over the training rows, once for the
whole search, beside its output. Parallel processes on one machine share it: the first one
writes it under a file lock, the others wait and open it; a complete cache made from the same
model and data is reused as it is.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from reuse.core import report
from reuse.core.errors import ReuseError
from reuse.training.options import FinetuneOptions


def plan_taps(base_model, y, base: FinetuneOptions, combos: list[tuple], taps=None) -> dict:
    """{(cut, unfreeze): the tap a trial with that cut and unfreeze mode trains from, or None
    (raw inputs)}.

    Args:
        base_model: the model to reuse (not changed).
        y: the training labels (they size the head).
        combos: (cut, unfreeze) pairs, `SearchSpace.combinations`.
        taps: the taps available (a given cache's); default: every valid cut point.

    Raises:
        LayerNotFound, CutError: a cut that the model does not have or allow.
    """
    from reuse.surgery import cuts
    from reuse.training.finetune import first_trainable
    from reuse.training.inputs import deepest_tap_below
    from reuse.training.transfer import build_transfer_model

    valid = set(cuts.valid_cut_points(base_model)) if taps is None else set(taps)
    out = {}
    for cut, unfreeze in combos:
        options = replace(base, cut=cut, unfreeze=unfreeze)
        transfer = build_transfer_model(base_model, y, options)
        trainable = first_trainable(transfer, options)
        candidates = [t for t in transfer.reused if t in valid]
        out[(cut, unfreeze)] = deepest_tap_below(transfer, trainable, candidates)
    return out


def cache_path_for(output: str | os.PathLike) -> Path:
    """`<output minus .json>.features.h5` beside the output."""
    out = Path(output)
    name = out.name[: -len(".json")] if out.name.lower().endswith(".json") else out.name
    return out.parent / f"{name}.features.h5"


def ensure_cache(base_model, train, path: Path, taps: list[str], model_path=None) -> Path:
    """A complete feature cache at `path` holding `taps` over `train`: the one there when it
    fits (same model, same data, every tap), else written now (under a lock that parallel
    processes share).

    Raises:
        whatever `reuse.cache.cache_features` raises (a tap that is not a cut point, data that
        does not fit the model).
    """
    import fcntl

    from reuse.cache import cache_features, open_cache

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if path.exists():
            try:
                with open_cache(path, model=base_model) as cache:
                    if set(taps) <= set(cache.taps):
                        cache.check_data(train)
                        report.info(f"trials train from the feature cache {path}")
                        return path
            except ReuseError:
                pass
        from reuse.cache.layout import part_path

        report.info(f"caching taps {', '.join(taps)} of the training rows in {path} (once)")
        cache_features(
            base_model,
            train,
            path,
            taps=list(taps),
            model_path=model_path,
            resume=part_path(path).exists(),
        )
    return path
