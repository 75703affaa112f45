"""What a search found: the table of trials, the best configuration, and best.json.

best.json holds the best configuration as the options `reuse finetune --config best.json`
reads (its `finetune` object: the searched values, the epochs and early stopping of the phase
that found it, and the options every trial was given), plus the metric, the value, the study
and the table of trials.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from reuse.core.errors import TrainingDiverged
from reuse.training.options import FinetuneOptions

# Options that are never written to best.json (they choose data, or are paths of one run).
_NOT_WRITTEN = {"seed", "val_split", "tensorboard"}


@dataclass
class TrialRow:
    """One trial of the table.

    Attributes:
        phase: "coarse" or "fine".
        number: the Optuna trial number within its phase's study.
        state: complete, pruned, failed, running or waiting.
        config: the options it set ({FinetuneOptions field: value}).
        value: the validation metric it ended with (pruned: the last one reported).
        epochs: epochs it trained. seconds: its wall time (the cost). tap: cache or input.
        note: diverged, interrupted, a retry, a duplicate...
    """

    phase: str
    number: int
    state: str
    config: dict
    value: float | None
    epochs: int | None
    seconds: float | None
    tap: str | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def rows_of(study, phase: str) -> list[TrialRow]:
    """The table rows of a study's trials (surplus trials of the fine phase left out)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if attrs.get("surplus") or "config" not in attrs:
            continue
        state = t.state.name.lower()
        value = t.value if t.value is not None else None
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        notes = []
        if attrs.get("diverged"):
            notes.append("diverged")
        if attrs.get("interrupted"):
            notes.append("interrupted")
        if "retry_of" in attrs:
            notes.append(f"retry of {attrs['retry_of']}")
        if "failed_trial" in t.system_attrs:
            notes.append(f"retry of {t.system_attrs['failed_trial']}")
        if "duplicate_of" in attrs:
            notes.append(f"same as {attrs['duplicate_of']}")
        if "from" in attrs:
            notes.append(f"coarse {attrs['from']}")
        rows.append(
            TrialRow(
                phase=phase,
                number=t.number,
                state=state,
                config=dict(attrs["config"]),
                value=None if value is None else float(value),
                epochs=attrs.get("epochs"),
                seconds=attrs.get("seconds"),
                tap=attrs.get("tap"),
                note=", ".join(notes),
            )
        )
    return rows


@dataclass
class TuneResult:
    """The outcome of `reuse.tune.tune`.

    Attributes:
        rows: every trial of both phases. best: the chosen row (fine if any finished).
        config: the options of best.json's `finetune` object.
        metric, direction: what chose, and which way. storage, study: where the trials live.
        space: the search space as `--space` items; searched: the dimensions that varied.
        lr_suggestions: the lr-find suggestion per optimizer. cache: the feature cache used.
        seconds: this process's wall time.
    """

    rows: list[TrialRow]
    best: TrialRow
    config: dict
    metric: str
    direction: str
    storage: str
    study: str
    space: list[str]
    searched: list[str]
    lr_suggestions: dict = field(default_factory=dict)
    cache: str | None = None
    seconds: float = 0.0

    @classmethod
    def build(
        cls,
        rows: list[TrialRow],
        *,
        base: FinetuneOptions,
        epochs: dict[str, int],
        patience: int,
        **kw,
    ) -> TuneResult:
        """Pick the best finished row (fine phase first) and its finetune options.

        `epochs` is each phase's epoch count; the fine phase trains with early stopping
        (`patience`), the coarse one without.

        Raises:
            TrainingDiverged: no trial finished (each diverged, failed or was pruned).
        """
        sign = 1 if kw["direction"] == "maximize" else -1
        for phase in ("fine", "coarse"):
            done = [r for r in rows if r.phase == phase and r.state == "complete"]
            if done:
                best = max(done, key=lambda r: (sign * r.value, -r.number))
                break
        else:
            raise TrainingDiverged(
                "no trial finished: each one diverged, failed or was pruned",
                "look at the table of trials; narrow --space lr=LO..HI below where they diverged",
            )
        config = best_config(base, best.config)
        config["epochs"] = epochs[best.phase]
        config["early_stopping"] = patience if best.phase == "fine" else None
        return cls(rows=rows, best=best, config=config, **kw)

    def to_dict(self) -> dict:
        """best.json: {"finetune": options, "metric", "value", ..., "trials": rows}."""
        return {
            "finetune": self.config,
            "metric": self.metric,
            "value": self.best.value,
            "direction": self.direction,
            "phase": self.best.phase,
            "trial": self.best.number,
            "study": self.study,
            "storage": self.storage,
            "space": self.space,
            "lr_suggestions": self.lr_suggestions,
            "cache": self.cache,
            "trials": [r.to_dict() for r in self.rows],
        }

    def write(self, path: str | os.PathLike) -> Path:
        """Write best.json atomically (`reuse.core.atomic`)."""
        from reuse.core import jsonio
        from reuse.core.atomic import write_text

        return write_text(Path(path), jsonio.dumps(self.to_dict(), indent=2) + "\n")


def best_config(base: FinetuneOptions, searched: dict) -> dict:
    """The options of best.json: those every trial was given explicitly (differing from the
    defaults), then the searched ones."""
    defaults = FinetuneOptions()
    out = {}
    for f in fields(FinetuneOptions):
        value = getattr(base, f.name)
        if f.name not in _NOT_WRITTEN and value != getattr(defaults, f.name):
            out[f.name] = list(value) if isinstance(value, tuple) else value
    out.update(searched)
    return out
