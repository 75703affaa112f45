"""Checkpoints of a fine-tuning run, and resuming one: same stage, epoch, freeze state,
optimizer state and schedule position.

After every epoch the checkpoint folder gets, in this order: the whole model's weights, the
optimizer variables (their `iterations` is the schedule position), the weights of the best
kept stage, and last `state.json`, which names the files of that epoch. Each file is written
through `reuse.core.atomic` (a temporary name beside it, fsync, rename), so a run killed at
any moment, or a power loss, leaves a consistent checkpoint: the previous epoch's, or this
one's.

The freeze state is part of `state.json` and is applied again on resume — a resumed stage
trains the layers it trained before (a known bug elsewhere: layers come back frozen after a
resume and are then silently never trained).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core import atomic, jsonio
from reuse.core.errors import UsageError

STATE = "state.json"


@dataclass
class ResumeState:
    """What `load_state` read from a checkpoint folder: where to continue, and the files of
    the epoch it was written after (NumPy `.npz` lists, read with `load_arrays`)."""

    stage: int  # index of the stage in progress
    stage_epochs_done: int  # epochs of that stage already trained
    global_epoch: int  # epochs trained in all stages
    trainable: list[str]
    results: list[dict]  # finished stages (StageResult fields)
    history: list[dict]
    best_metric: float | None
    stage_best: float | None
    stage_wait: int
    weights: Path
    optimizer: Path | None
    best_weights: Path | None
    stage_best_weights: Path | None
    options: dict = field(default_factory=dict)


class Checkpointer:
    """Writes a checkpoint after each epoch into `directory` (created with the first one).

    `options` is the run's fingerprint (JSON-able option values); `load_state` refuses to
    resume with other values. Only the files of the last epoch are kept.
    """

    def __init__(self, directory: str | os.PathLike, options: dict):
        self.dir = Path(directory)
        self.options = options

    def _write(self, name: str, writer) -> Path:
        # Created with the first checkpoint, so a run that fails earlier leaves no empty folder.
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.dir / name
        with atomic.atomic_path(target) as tmp:
            writer(tmp)
        return target

    def save(
        self,
        *,
        model,
        optimizers: list,
        stage: int,
        stage_epochs_done: int,
        global_epoch: int,
        trainable: list[str],
        results: list[dict],
        history: list[dict],
        best_metric: float | None,
        best_weights: list[np.ndarray] | None,
        stage_best: float | None,
        stage_wait: int,
        stage_best_weights: list[np.ndarray] | None,
    ) -> None:
        """Write the checkpoint of epoch `global_epoch`, then delete the older epochs' files.

        Weight lists are NumPy arrays as `model.get_weights()` returns them; `optimizers`
        are Keras optimizers whose `variables` are saved in order. `state.json` goes last,
        so a run killed midway leaves the previous checkpoint valid.

        Raises:
            OSError: the folder cannot be written (the previous checkpoint stays valid).
            TypeError: a value in the state that JSON cannot hold.
        """
        tag = f"e{global_epoch}"
        weights = self._write(f"{tag}.model.npz", lambda p: _save_arrays(p, model.get_weights()))
        opt_vars = [np.array(v) for opt in optimizers for v in opt.variables]
        opt_file = self._write(f"{tag}.optimizer.npz", lambda p: _save_arrays(p, opt_vars))
        best_file = (
            self._write(f"{tag}.best.npz", lambda p: _save_arrays(p, best_weights))
            if best_weights is not None
            else None
        )
        stage_best_file = (
            self._write(f"{tag}.stage_best.npz", lambda p: _save_arrays(p, stage_best_weights))
            if stage_best_weights is not None
            else None
        )
        state = {
            "stage": stage,
            "stage_epochs_done": stage_epochs_done,
            "global_epoch": global_epoch,
            "trainable": trainable,
            "results": results,
            "history": history,
            "best_metric": best_metric,
            "stage_best": stage_best,
            "stage_wait": stage_wait,
            "weights": weights.name,
            "optimizer": opt_file.name,
            "best_weights": best_file.name if best_file else None,
            "stage_best_weights": stage_best_file.name if stage_best_file else None,
            "options": self.options,
        }
        self._write(STATE, lambda p: Path(p).write_text(jsonio.dumps(state) + "\n"))
        keep = {
            STATE,
            weights.name,
            opt_file.name,
            *(f.name for f in (best_file, stage_best_file) if f),
        }
        for old in self.dir.iterdir():
            # Older epochs' files, and temporary files left by a run killed mid-write.
            leftover = old.name.startswith(".") and atomic.PART in old.name
            if old.name not in keep and (leftover or not old.name.startswith(".")):
                old.unlink(missing_ok=True)


def _save_arrays(path, arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, *arrays)


def load_arrays(path: Path) -> list[np.ndarray]:
    """The arrays of a checkpoint `.npz`, in the order they were saved."""
    with np.load(path, allow_pickle=False) as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def require_checkpoint(directory: str | os.PathLike | None) -> Path:
    """The `state.json` of the checkpoint in `directory`; checked before any work starts (no
    TensorFlow), and nothing is created.

    Raises:
        UsageError: no folder given, or no checkpoint in it (exit code 2).
    """
    if directory is None:
        raise UsageError("--resume needs --checkpoint-dir", "pass the folder of the run to resume")
    path = Path(directory) / STATE
    if not path.is_file():
        raise UsageError(
            f"no checkpoint in {directory} (no {STATE})",
            "run once with --checkpoint-dir first, or drop --resume",
        )
    return path


def load_state(directory: str | os.PathLike, options: dict) -> ResumeState:
    """The last checkpoint in `directory`.

    Raises:
        UsageError: no checkpoint there, or one made with other options.
    """
    path = require_checkpoint(directory)
    d = Path(directory)
    state = json.loads(path.read_text())
    # Compare as stored: through JSON, a tuple (--image-shape) equals the list read back.
    options = json.loads(jsonio.dumps(options))
    ignore = {"epochs_hint"}
    differ = [k for k in options if k not in ignore and state["options"].get(k) != options.get(k)]
    if differ:
        first = differ[0]
        raise UsageError(
            f"the checkpoint in {d} was made with other options ({first}: {state['options'].get(first)!r}, now {options.get(first)!r})",
            "resume with the same options, or start afresh in another --checkpoint-dir",
        )

    def opt(name):
        return d / state[name] if state.get(name) else None

    return ResumeState(
        stage=state["stage"],
        stage_epochs_done=state["stage_epochs_done"],
        global_epoch=state["global_epoch"],
        trainable=state["trainable"],
        results=state["results"],
        history=state["history"],
        best_metric=state["best_metric"],
        stage_best=state.get("stage_best"),
        stage_wait=state.get("stage_wait", 0),
        weights=d / state["weights"],
        optimizer=opt("optimizer"),
        best_weights=opt("best_weights"),
        stage_best_weights=opt("stage_best_weights"),
        options=state["options"],
    )
