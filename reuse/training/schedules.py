"""Learning-rate schedules from `--schedule NAME[:key=value,...]`.

Keras' own schedules are used where Keras has one or an equivalent (exponential, piecewise,
polynomial, cosine; natural-exp is ExponentialDecay with decay_rate exp(−k), power with c=1 is
InverseTimeDecay), so a model trained with them loads in plain Keras. One-cycle and power with
c≠1 are `reuse.surgery.keras_objects` classes: reuse reloads them, and `FinetuneResult.save`
saves a model trained with them uncompiled so that any Keras loads it (docs/errors.md).
`performance` (reduce on plateau) is a callback, not a schedule. Keras is imported inside the functions, so `SCHEDULE_HELP` is free to import.

Units: step-like keys (`decay_steps`, `warmup_steps`, `total_steps`, `boundaries`) count
optimizer steps (batches). Each has an epoch spelling (`decay_epochs`, `warmup_epochs`,
`total_epochs`, `boundary_epochs`), and `unit=epoch` reads every step-like key in epochs.
Epochs become steps as round(value × steps_per_epoch), so fractions of an epoch work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reuse.core import spec_grammar as _spec
from reuse.core.errors import SpecError

SCHEDULE_HELP = """\
--schedule NAME[:key=value,...]   (t = optimizer step; T = steps_per_epoch x epochs; lr0 = --lr)
  constant                         lr0
  exponential  decay_rate=0.1 decay_steps=T staircase=false
                                   lr0 * decay_rate ** (t / decay_steps)
  natural-exp  decay_rate=1 decay_steps=T staircase=false
                                   lr0 * exp(-decay_rate * t / decay_steps)
  piecewise    boundaries=B1;B2 values=V0;V1;V2  (both required)
                                   V0 until B1, V1 until B2, then V2
  polynomial   end_lr=lr0/100 power=1 cycle=false decay_steps=T
                                   (lr0 - end_lr) * (1 - t/decay_steps) ** power + end_lr
  power        decay_steps=steps_per_epoch power=1
                                   lr0 / (1 + t / decay_steps) ** power
  cosine       warmup_steps=0 decay_steps=T-warmup alpha=0 start_lr=0
                                   linear warm-up start_lr -> lr0, then
                                   lr0 * (alpha + (1-alpha) * (1 + cos(pi * t'/decay_steps)) / 2)
  one-cycle    max_lr=lr0 pct=0.3 div=25 final_div=1e4 total_steps=T anneal=cos|linear
                                   max_lr/div -> max_lr over pct of the steps, then
                                   -> max_lr/div/final_div
  performance  factor=0.5 patience=5 min_lr=0 monitor=val_loss min_delta=0.0001 cooldown=0
                                   reduce on plateau: lr *= factor when `monitor` has not
                                   improved for `patience` epochs
Step keys take epochs too: decay_epochs=2, warmup_epochs=1, total_epochs=10,
boundary_epochs=5;8, or unit=epoch for all of them. Lists use ';'.
Examples: exponential:decay_rate=0.1,decay_epochs=10   cosine:warmup_epochs=1
          piecewise:boundaries=500;1000,values=0.01;0.005;0.001   performance:factor=0.2,patience=3"""

# Step-like keys and their epoch spellings.
_EPOCH_KEYS = {
    "decay_steps": "decay_epochs",
    "warmup_steps": "warmup_epochs",
    "total_steps": "total_epochs",
    "boundaries": "boundary_epochs",
}
_ALIASES = {
    "warmup": "warmup_steps",
    "steps": "decay_steps",
    "s": "decay_steps",
    "c": "power",
    "rate": "decay_rate",
    "k": "decay_rate",
    "end_learning_rate": "end_lr",
    "pct_start": "pct",
    "div_factor": "div",
    "final_div_factor": "final_div",
    "boundary_steps": "boundaries",
    "warmup_target": None,  # refused below: the warm-up target is --lr
}

_KEYS = {
    "constant": set(),
    "exponential": {"decay_rate", "decay_steps", "staircase"},
    "natural-exp": {"decay_rate", "decay_steps", "staircase"},
    "piecewise": {"boundaries", "values"},
    "polynomial": {"end_lr", "power", "cycle", "decay_steps"},
    "power": {"decay_steps", "power"},
    "cosine": {"warmup_steps", "decay_steps", "alpha", "start_lr"},
    "one-cycle": {"max_lr", "pct", "div", "final_div", "total_steps", "anneal"},
    "performance": {"factor", "patience", "min_lr", "monitor", "min_delta", "cooldown"},
}
_NAME_ALIASES = {
    "none": "constant",
    "exp": "exponential",
    "natural-exponential": "natural-exp",
    "naturalexp": "natural-exp",
    "piecewise-constant": "piecewise",
    "cosine-decay": "cosine",
    "onecycle": "one-cycle",
    "1cycle": "one-cycle",
    "plateau": "performance",
    "reduce-on-plateau": "performance",
}
SCHEDULE_NAMES = list(_KEYS)


@dataclass
class _Keys:
    """Raw key=value pairs of one schedule, read once each, with units resolved."""

    name: str
    raw: dict[str, str]
    steps_per_epoch: int
    epoch_unit: bool

    def has(self, key: str) -> bool:
        return key in self.raw

    def number(self, key: str, default: float, **bounds) -> float:
        return _spec.number(key, self.raw[key], **bounds) if key in self.raw else default

    def boolean(self, key: str, default: bool) -> bool:
        return _spec.boolean(key, self.raw[key]) if key in self.raw else default

    def steps(self, key: str, default: int, *, lo: int = 1) -> int:
        """A step-like key as whole steps, converting its epoch spelling."""
        if key not in self.raw:
            return default
        spelled, value, in_epochs = self.raw[key]
        x = _spec.number(spelled, value, lo=0, example="2" if in_epochs else "100")
        n = int(round(x * self.steps_per_epoch)) if in_epochs else x
        if not in_epochs and n != int(n):
            raise SpecError(
                f"`{spelled}` must be a whole number of steps. Received: {spelled}={value}",
                f"give whole steps, or use {_EPOCH_KEYS.get(key, key)}= for epochs",
            )
        n = int(n)
        if n < lo:
            what = (
                f" ({x:g} epochs x {self.steps_per_epoch} steps/epoch = {n} steps)"
                if in_epochs
                else ""
            )
            raise SpecError(
                f"`{spelled}` must be >= {lo} step(s). Received: {spelled}={value}{what}",
                f"give {spelled} >= {lo}" if not in_epochs else "give more epochs",
            )
        return n

    def step_list(self, key: str) -> list[int]:
        spelled, value, in_epochs = self.raw[key]
        out = []
        for x in _spec.numbers(spelled, value):
            n = x * self.steps_per_epoch if in_epochs else x
            if not in_epochs and n != int(n):
                raise SpecError(
                    f"`{spelled}` must list whole steps. Received: {spelled}={value}",
                    "give whole steps, or boundary_epochs= for epochs",
                )
            out.append(int(round(n)))
        return out


def parse_schedule(
    text: str | None, *, lr: float, steps_per_epoch: int, epochs: int, validation: bool = True
):
    """A learning-rate schedule (or a constant lr) and the callbacks it needs, from a spec.

        sched, callbacks = parse_schedule("exponential:decay_epochs=2", lr=0.01,
                                          steps_per_epoch=100, epochs=10)
        optimizer = parse_optimizer("adam", sched)

    Args:
        text: `NAME[:key=value,...]` (see `SCHEDULE_HELP`); None or "" means constant.
        lr: the initial (or peak) learning rate, `--lr`.
        steps_per_epoch: optimizer steps per epoch, to convert epoch keys and defaults.
        epochs: planned epochs; T = steps_per_epoch × epochs is the default decay length.
        validation: whether validation data exists; `performance` then monitors val_loss by
            default, otherwise loss.

    Returns:
        (schedule, callbacks): a `keras.optimizers.schedules.LearningRateSchedule` or a float
        for `lr=` of the optimizer, and a list of Keras callbacks to pass to `fit`
        (a `ReduceLROnPlateau` for `performance`, otherwise empty).

    Raises:
        SpecError: unknown schedule or key, bad value, or a missing required key.
    """
    import keras

    from reuse.surgery import keras_objects as ko

    if not (isinstance(lr, int | float) and lr > 0):
        raise SpecError(f"--lr must be > 0. Received: --lr {lr}", "e.g. --lr 0.001")
    lr = float(lr)
    spe = _spec.integer("steps_per_epoch", str(steps_per_epoch), lo=1)
    epochs = _spec.integer("epochs", str(epochs), lo=1)
    total = spe * epochs
    k = _read_keys(text or "constant", spe)
    name = k.name
    sched = keras.optimizers.schedules

    if name == "constant":
        return lr, []
    if name == "exponential":
        return sched.ExponentialDecay(
            lr,
            k.steps("decay_steps", total),
            k.number("decay_rate", 0.1, lo=0, lo_open=True),
            staircase=k.boolean("staircase", False),
        ), []
    if name == "natural-exp":
        # lr·exp(−k·t/s) is Keras's ExponentialDecay with decay_rate exp(−k): a built-in, so
        # the saved model loads in any Keras (reuse's NaturalExpDecay computes the same).
        return sched.ExponentialDecay(
            lr,
            k.steps("decay_steps", total),
            math.exp(-k.number("decay_rate", 1.0, lo=0)),
            staircase=k.boolean("staircase", False),
        ), []
    if name == "piecewise":
        return _piecewise(k, sched), []
    if name == "polynomial":
        decay_steps = k.steps("decay_steps", total)
        end_lr = k.number("end_lr", lr / 100, lo=0)
        return sched.PolynomialDecay(
            lr,
            decay_steps,
            end_learning_rate=end_lr,
            power=k.number("power", 1.0, lo=0),
            cycle=k.boolean("cycle", False),
        ), []
    if name == "power":
        decay_steps, power = k.steps("decay_steps", spe), k.number("power", 1.0, lo=0)
        if power == 0:
            return lr, []
        if power == 1:
            # lr / (1 + t/s) is Keras's InverseTimeDecay (decay_rate 1): loads in any Keras.
            return sched.InverseTimeDecay(lr, decay_steps, 1.0), []
        return ko.PowerDecay(lr, decay_steps, power=power), []
    if name == "cosine":
        warmup = k.steps("warmup_steps", 0, lo=0)
        decay_steps = k.steps("decay_steps", max(total - warmup, 1))
        alpha = k.number("alpha", 0.0, lo=0, hi=1)
        if warmup:
            start = k.number("start_lr", 0.0, lo=0)
            return sched.CosineDecay(
                start, decay_steps, alpha=alpha, warmup_target=lr, warmup_steps=warmup
            ), []
        if k.has("start_lr"):
            raise SpecError(
                "`start_lr` needs a warm-up. Received: start_lr without warmup_steps",
                "add warmup_steps=N (or warmup_epochs=N), or drop start_lr",
            )
        return sched.CosineDecay(lr, decay_steps, alpha=alpha), []
    if name == "one-cycle":
        anneal = k.raw.get("anneal", "cos").strip().lower()
        if anneal not in ("cos", "linear"):
            raise SpecError(
                f"`anneal` must be cos or linear. Received: anneal={anneal}", "e.g. anneal=cos"
            )
        return ko.OneCycle(
            k.number("max_lr", lr, lo=0, lo_open=True),
            k.steps("total_steps", total),
            pct_start=k.number("pct", 0.3, lo=0, hi=1, lo_open=True, hi_open=True),
            div_factor=k.number("div", 25.0, lo=1),
            final_div_factor=k.number("final_div", 1e4, lo=1),
            anneal=anneal,
        ), []
    # performance
    monitor = k.raw.get("monitor", "val_loss" if validation else "loss").strip()
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        factor=k.number("factor", 0.5, lo=0, hi=1, lo_open=True, hi_open=True),
        patience=_spec.integer("patience", k.raw["patience"], lo=0) if k.has("patience") else 5,
        min_lr=k.number("min_lr", 0.0, lo=0),
        min_delta=k.number("min_delta", 1e-4, lo=0),
        cooldown=_spec.integer("cooldown", k.raw["cooldown"], lo=0) if k.has("cooldown") else 0,
        verbose=0,
    )
    return lr, [callback]


def _piecewise(k: _Keys, sched):
    missing = [key for key in ("boundaries", "values") if not k.has(key)]
    if missing:
        raise SpecError(
            f"schedule piecewise needs {' and '.join(f'`{m}`' for m in missing)}",
            "e.g. --schedule piecewise:boundaries=500;1000,values=0.01;0.005;0.001",
        )
    boundaries = k.step_list("boundaries")
    values = _spec.numbers("values", k.raw["values"])
    if len(values) != len(boundaries) + 1:
        raise SpecError(
            f"piecewise needs one more value than boundaries. Received: {len(boundaries)} "
            f"boundaries and {len(values)} values",
            "values=V0;V1;...: V0 before the first boundary, then one value after each",
        )
    if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)) or boundaries[0] < 0:
        raise SpecError(
            f"`boundaries` must increase strictly from >= 0. Received: {boundaries} (steps)",
            "e.g. boundaries=500;1000",
        )
    if any(v < 0 for v in values):
        raise SpecError(
            f"`values` must be >= 0. Received: values={k.raw['values']}", "give learning rates >= 0"
        )
    return sched.PiecewiseConstantDecay(boundaries, values)


def check_spec(text: str) -> None:
    """Check a `--schedule` spec's name and keys without TensorFlow (values are checked by
    `parse_schedule`).

    Raises:
        SpecError: an unknown schedule or key, a key given twice.
    """
    _read_keys(text, 1)


def _read_keys(text: str, steps_per_epoch: int) -> _Keys:
    name, raw = _spec.split_named(text, "schedule", "--schedule")
    name = _NAME_ALIASES.get(name, name)
    if name not in _KEYS:
        raise SpecError(f"unknown schedule '{name}'", _spec.did_you_mean(name, SCHEDULE_NAMES))
    allowed = _KEYS[name]
    epoch_unit = False
    if "unit" in raw:
        unit = raw.pop("unit").strip().lower()
        if unit not in ("step", "steps", "epoch", "epochs"):
            raise SpecError(
                f"`unit` must be step or epoch. Received: unit={unit}", "e.g. unit=epoch"
            )
        epoch_unit = unit.startswith("epoch")
    by_epoch = {v: s for s, v in _EPOCH_KEYS.items()}
    out: dict = {}
    for key, value in raw.items():
        canon = key
        if canon in _ALIASES:
            if _ALIASES[canon] is None:
                raise SpecError(
                    f"`{key}` cannot be set: the warm-up target is --lr", "set --lr instead"
                )
            canon = _ALIASES[canon]
        in_epochs = False
        if canon in by_epoch:
            canon, in_epochs = by_epoch[canon], True
        if canon not in allowed:
            valid = sorted(
                allowed
                | {_EPOCH_KEYS[s] for s in allowed if s in _EPOCH_KEYS}
                | ({"unit"} if allowed & set(_EPOCH_KEYS) else set())
            )
            if not valid:
                raise SpecError(
                    f"schedule {name} takes no keys. Received: {key}={value}",
                    f"write --schedule {name}",
                )
            raise SpecError(f"schedule {name} has no key `{key}`", _spec.did_you_mean(key, valid))
        if canon in out:
            raise SpecError(
                f"`{canon}` is given twice (as {out[canon][0]} and {key})", "give it once"
            )
        if canon in _EPOCH_KEYS:
            out[canon] = (key, value, in_epochs or epoch_unit)
        else:
            out[canon] = value
    return _Keys(name, out, steps_per_epoch, epoch_unit)


def __getattr__(name: str):
    # The schedule classes live in reuse.surgery.keras_objects (which imports Keras); exposing them
    # here lazily keeps this module light for `--help`.
    if name in ("NaturalExpDecay", "PowerDecay", "OneCycle"):
        from reuse.surgery import keras_objects

        return getattr(keras_objects, name)
    raise AttributeError(f"module 'reuse.training.schedules' has no attribute '{name}'")
