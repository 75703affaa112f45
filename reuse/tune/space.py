"""The search space of `reuse tune` (`--space NAME=VALUES`) and how a trial draws from it.

Each `--space` item sets one dimension; the ones not given keep their defaults:

    lr=around:10          log-uniform within 10x either side of the lr-find suggestion (default)
    lr=1e-4..1e-2         log-uniform between two rates
    wd=1e-4,1e-5,0        weight decay, one of these values (default): finetune's --l2
    wd=1e-6..1e-3         log-uniform
    dropout=0..0.5        uniform; or dropout=0,0.2,0.4
    cut=hidden3,hidden4   the reuse depth: the last reused layer, one of these
    unfreeze=0,1,2        the number of top reused layers that train (finetune's --unfreeze top:N);
                          none, all and gradual may be choices too
    optimizer=adam,nesterov   one of these --optimizer specs (each gets its own lr suggestion)

A single value fixes a dimension (`wd=0`). Values are chosen by the Optuna trial (`suggest`),
so the sampler (TPE) sees every dimension; a dimension that depends on the optimizer (its
learning rate, `around` the optimizer's own suggestion) is a conditional parameter
`lr[NAME]`. Nothing here imports Optuna: a trial object is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reuse.core.errors import UsageError

# name -> the FinetuneOptions field it sets
FIELDS = {
    "lr": "lr",
    "wd": "l2",
    "dropout": "dropout",
    "cut": "cut",
    "unfreeze": "unfreeze",
    "optimizer": "optimizer",
}
ALIASES = {"l2": "wd", "weight_decay": "wd", "weight-decay": "wd", "learning_rate": "lr"}
DEFAULT_SPACE = ("lr=around:10", "wd=1e-4,1e-5,0")
SPACE_HELP = (
    "NAME=VALUES, repeatable: lr=around:10 (default: 10x either side of the lr-find suggestion) "
    "or lr=1e-4..1e-2; wd=1e-4,1e-5,0 (default; weight decay = finetune's --l2); "
    "dropout=0..0.5; cut=hidden3,hidden4 (reuse depth); unfreeze=0,1,2 (top reused layers that "
    "train); optimizer=adam,nesterov. LO..HI is a range (log scale for lr and wd), a,b,c a choice, "
    "one value fixes it."
)


@dataclass
class Dimension:
    """One searched option: a range (`low`..`high`, `log`), a list of `choices`, or lr `around`
    the lr-find suggestion by `factor`."""

    name: str
    choices: list = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    log: bool = False
    factor: float | None = None  # lr=around:F

    @property
    def searched(self) -> bool:
        return self.factor is not None or self.low is not None or len(self.choices) > 1

    def text(self) -> str:
        if self.factor is not None:
            return f"{self.name}=around:{self.factor:g}"
        if self.low is not None:
            return f"{self.name}={self.low:g}..{self.high:g}"
        return f"{self.name}=" + ",".join(str(c) for c in self.choices)


@dataclass
class SearchSpace:
    """The dimensions of a search, by name (lr, wd, dropout, cut, unfreeze, optimizer)."""

    dims: dict[str, Dimension]

    def texts(self) -> list[str]:
        """The space as `--space` items, in a fixed order (stored with the study)."""
        return [self.dims[n].text() for n in FIELDS if n in self.dims]

    def optimizers(self, default: str) -> list[str]:
        """The --optimizer specs the search tries (`default` when not searched)."""
        dim = self.dims.get("optimizer")
        return list(dim.choices) if dim else [default]

    def needs_lr_find(self) -> bool:
        return self.dims["lr"].factor is not None

    def searched(self) -> list[str]:
        """Names of the dimensions that vary, for the table's columns."""
        return [n for n in FIELDS if n in self.dims and self.dims[n].searched]

    def combinations(self, base_cut, base_unfreeze) -> list[tuple]:
        """Every (cut, unfreeze) a trial may use: what decides which cached tap it trains from."""
        cuts = self.dims["cut"].choices if "cut" in self.dims else [base_cut]
        modes = self.dims["unfreeze"].choices if "unfreeze" in self.dims else [base_unfreeze]
        return [(c, u) for c in cuts for u in modes]

    def suggest(self, trial, lr_centers: dict[str, float], default_optimizer: str) -> dict:
        """Draw one configuration with the Optuna `trial`: {FinetuneOptions field: value}.

        `lr_centers` maps each optimizer spec to its lr-find suggestion (used by lr=around).
        """
        config: dict = {}
        optimizer = default_optimizer
        if "optimizer" in self.dims:
            optimizer = _draw(trial, self.dims["optimizer"], "optimizer")
            config["optimizer"] = optimizer
        lr_dim = self.dims["lr"]
        if lr_dim.factor is not None:
            center = lr_centers[optimizer]
            name = f"lr[{optimizer}]" if "optimizer" in self.dims else "lr"
            config["lr"] = trial.suggest_float(
                name, center / lr_dim.factor, center * lr_dim.factor, log=True
            )
        else:
            config["lr"] = _draw(trial, lr_dim, "lr")
        for name in ("wd", "dropout", "cut", "unfreeze"):
            if name in self.dims:
                config[FIELDS[name]] = _draw(trial, self.dims[name], name)
        return config


def _draw(trial, dim: Dimension, name: str):
    if dim.low is not None:
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    if len(dim.choices) == 1:
        return dim.choices[0]
    return trial.suggest_categorical(name, list(dim.choices))


def parse_space(items: list[str] | tuple[str, ...] | None) -> SearchSpace:
    """The search space of `--space` items over the defaults (`DEFAULT_SPACE`).

    Example:
        >>> parse_space(["dropout=0..0.5", "wd=0"]).texts()
        ['lr=around:10', 'wd=0', 'dropout=0..0.5']

    Raises:
        UsageError: an unknown name (with a "did you mean"), a malformed or empty value, a
            range whose low end is not below its high end, a log range that includes 0.
    """
    dims: dict[str, Dimension] = {}
    for item in [*DEFAULT_SPACE, *(items or [])]:
        name, eq, value = str(item).partition("=")
        name = ALIASES.get(name.strip().lower(), name.strip().lower())
        if not eq or not value.strip():
            raise UsageError(
                f"--space takes NAME=VALUES. Received: {item!r}", "e.g. --space dropout=0..0.5"
            )
        if name not in FIELDS:
            from reuse.core.spec_grammar import did_you_mean

            raise UsageError(f"--space: unknown name {name!r}", did_you_mean(name, list(FIELDS)))
        dims[name] = _dimension(name, value.strip(), item)
    return SearchSpace(dims)


def _dimension(name: str, value: str, item: str) -> Dimension:
    if value.lower().startswith("around"):
        if name != "lr":
            raise UsageError(
                f"--space {item}: only lr can be `around` the lr-find suggestion",
                f"give a range or choices, e.g. {name}=0..0.5",
            )
        _, _, factor = value.partition(":")
        f = _number(item, factor or "10")
        if not f > 1:
            raise UsageError(
                f"--space {item}: the factor must be > 1", "e.g. lr=around:10 (10x either side)"
            )
        return Dimension(name, factor=f)
    numeric = name in ("lr", "wd", "dropout")
    if ".." in value:
        if not numeric:
            raise UsageError(
                f"--space {item}: {name} takes a list of choices, not a range",
                f"e.g. {'cut=hidden3,hidden4' if name == 'cut' else 'unfreeze=0,1,2'}",
            )
        lo_text, _, hi_text = value.partition("..")
        lo, hi = _number(item, lo_text), _number(item, hi_text)
        log = name in ("lr", "wd")
        if not lo < hi:
            raise UsageError(
                f"--space {item}: the low end must be below the high end", f"e.g. {name}=1e-4..1e-2"
            )
        if log and lo <= 0:
            raise UsageError(
                f"--space {item}: {name} ranges are on a log scale, so the low end must be > 0",
                f"e.g. {name}=1e-6..1e-3, or choices with 0: {name}=1e-4,1e-5,0",
            )
        if name == "dropout" and not (lo >= 0 and hi < 1):
            raise UsageError(f"--space {item}: dropout lies in [0, 1)", "e.g. dropout=0..0.5")
        return Dimension(name, low=lo, high=hi, log=log)
    choices = _choices(name, value, item)
    if not choices:
        raise UsageError(f"--space {item}: no values", f"e.g. {name}=a,b")
    return Dimension(name, choices=choices)


def _choices(name: str, value: str, item: str) -> list:
    pieces = [p.strip() for p in value.split(",")]
    if name == "optimizer":
        # An optimizer spec has commas of its own (adam:beta2=0.99,clipnorm=1): a piece that is
        # only key=value belongs to the spec before it.
        merged: list[str] = []
        for piece in pieces:
            if merged and "=" in piece and ":" not in piece:
                merged[-1] += "," + piece
            else:
                merged.append(piece)
        from reuse.training.optimizers import optimizer_factory

        for spec in merged:
            optimizer_factory(spec)  # SpecError naming the optimizer or key
        return merged
    if any(not p for p in pieces):
        raise UsageError(f"--space {item}: an empty value", f"e.g. {name}=a,b")
    if name in ("lr", "wd", "dropout"):
        values = [_number(item, p) for p in pieces]
        if name == "lr" and min(values) <= 0:
            raise UsageError(f"--space {item}: a learning rate must be > 0", "e.g. lr=1e-3,3e-3")
        if name == "dropout" and not all(0 <= v < 1 for v in values):
            raise UsageError(f"--space {item}: dropout lies in [0, 1)", "e.g. dropout=0,0.2")
        if name == "wd" and min(values) < 0:
            raise UsageError(f"--space {item}: weight decay must be >= 0", "e.g. wd=1e-4,1e-5,0")
        return values
    if name == "unfreeze":
        out = []
        for p in pieces:
            if p.isdigit():
                out.append(f"top:{int(p)}")
            elif p.lower() in ("none", "all", "gradual") or p.lower().startswith("top:"):
                out.append(p.lower())
            else:
                raise UsageError(
                    f"--space {item}: {p!r} is not a number of layers, none, all or gradual",
                    "e.g. unfreeze=0,1,2",
                )
        return out
    return pieces


def _number(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            f"--space {item}: {text.strip()!r} is not a number", "e.g. lr=1e-4..1e-2"
        ) from None
    if not math.isfinite(value):
        raise UsageError(f"--space {item}: {text.strip()!r} is not finite", "give a finite number")
    return value
