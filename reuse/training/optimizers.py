"""Keras optimizers from `--optimizer NAME[:key=value,...]`.

Keys are checked against the Keras optimizer's own `__init__`, so every argument Keras has
is reachable and nothing else is. Every training stage compiles with a fresh optimizer (its
slots must not carry over between stages), hence `optimizer_factory`, which validates the
spec once and then builds a new optimizer for each learning rate it is given.
"""

from __future__ import annotations

import inspect

from reuse.core import spec_grammar as _spec
from reuse.core.errors import SpecError

OPTIMIZER_HELP = """\
--optimizer NAME[:key=value,...]   (learning rate from --lr / --schedule; Keras default if unset)
  sgd        plain gradient descent                      momentum=0 nesterov=false
  momentum   SGD with momentum                           momentum=0.9
  nesterov   SGD with Nesterov momentum                  momentum=0.9 nesterov=true
  adagrad    per-parameter lr, decays with sum of g^2    initial_accumulator_value epsilon
  rmsprop    moving average of g^2                       rho=0.9 momentum epsilon centered
  adam       momentum + RMSProp                          beta1=0.9 beta2=0.999 epsilon amsgrad
  adamw      Adam with decoupled weight decay            weight_decay=0.004 beta1 beta2
  nadam      Adam with Nesterov momentum                 beta1 beta2 epsilon
  ftrl       for sparse models (L1 drives weights to 0)  l1 l2 learning_rate_power=-0.5 beta
                                                         initial_accumulator_value l2_shrinkage
Every optimizer also takes clipnorm, clipvalue, global_clipnorm, weight_decay, use_ema,
ema_momentum. Aliases: beta1/beta2 = beta_1/beta_2; l1/l2 = l1/l2_regularization_strength.
Examples: momentum:momentum=0.95   adam:beta2=0.99,clipnorm=1   ftrl:l1=0.01,l2=0.001"""

# name -> (Keras class name, defaults that make the name mean what it says)
_OPTIMIZERS = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "nadam": ("Nadam", {}),
    "ftrl": ("Ftrl", {}),
}
OPTIMIZER_NAMES = list(_OPTIMIZERS)
_KEY_ALIASES = {
    "beta1": "beta_1",
    "beta2": "beta_2",
    "l1": "l1_regularization_strength",
    "l2": "l2_regularization_strength",
    "l2_shrinkage": "l2_shrinkage_regularization_strength",
    "eps": "epsilon",
    "clip_norm": "clipnorm",
    "clip_value": "clipvalue",
}
# Arguments that are not tuning knobs of the update rule.
_HIDDEN = {"self", "learning_rate", "name", "kwargs", "loss_scale_factor"}
_INTEGER = {"ema_overwrite_frequency", "gradient_accumulation_steps"}
# (lo, hi, lo_open, hi_open) for keys with a meaningful range.
_BOUNDS = {
    "momentum": (0, 1, False, True),
    "beta_1": (0, 1, False, True),
    "beta_2": (0, 1, False, True),
    "rho": (0, 1, False, True),
    "ema_momentum": (0, 1, False, False),
    "epsilon": (0, None, True, False),
    "clipnorm": (0, None, True, False),
    "clipvalue": (0, None, True, False),
    "global_clipnorm": (0, None, True, False),
    "weight_decay": (0, None, False, False),
    "initial_accumulator_value": (0, None, False, False),
    "l1_regularization_strength": (0, None, False, False),
    "l2_regularization_strength": (0, None, False, False),
    "l2_shrinkage_regularization_strength": (0, None, False, False),
    "learning_rate_power": (None, 0, False, False),
    "beta": (0, None, False, False),
}


class OptimizerFactory:
    """A validated optimizer spec; calling it with a learning rate builds a fresh optimizer.

        make = optimizer_factory("adam:beta2=0.99")
        opt_stage1, opt_stage2 = make(1e-3), make(1e-4)

    Attributes:
        name: the spec name (`momentum`, `adam`, ...).
        params: the Keras keyword arguments the optimizer is built with (aliases resolved).
    """

    def __init__(self, name: str, class_name: str, params: dict):
        self.name = name
        self.class_name = class_name
        self.params = params

    def __call__(self, lr=None):
        """A new Keras optimizer; `lr` is a float, a LearningRateSchedule, or None (Keras default)."""
        import keras

        cls = getattr(keras.optimizers, self.class_name)
        kwargs = dict(self.params)
        if lr is not None:
            if isinstance(lr, int | float) and not lr > 0:
                raise SpecError(f"--lr must be > 0. Received: --lr {lr}", "e.g. --lr 0.001")
            kwargs["learning_rate"] = lr
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as err:
            raise SpecError(
                f"optimizer {self} rejected its arguments: {err}",
                "check the keys in --optimizer (see reuse finetune --help)",
            ) from None

    def __str__(self) -> str:
        keys = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}:{keys}" if keys else self.name

    def __repr__(self) -> str:
        return f"OptimizerFactory({str(self)!r})"


def optimizer_factory(
    text: str | None, *, clipnorm: float | None = None, clipvalue: float | None = None
) -> OptimizerFactory:
    """Validate an optimizer spec now and return a builder of fresh optimizers.

        make = optimizer_factory("nesterov:momentum=0.95", clipnorm=1.0)
        model.compile(optimizer=make(0.01), loss="mse")

    Args:
        text: `NAME[:key=value,...]` (see `OPTIMIZER_HELP`); None or "" means adam.
        clipnorm: `--clip-norm`; the spec's own `clipnorm` key wins only if they agree.
        clipvalue: `--clip-value`, likewise.

    Returns:
        An `OptimizerFactory`: `factory(lr)` returns a new Keras optimizer.

    Raises:
        SpecError: unknown optimizer or key, a bad value, or conflicting clip settings.
    """
    name, raw = _spec.split_named(text or "adam", "optimizer", "--optimizer")
    if name not in _OPTIMIZERS:
        raise SpecError(f"unknown optimizer '{name}'", _spec.did_you_mean(name, OPTIMIZER_NAMES))
    class_name, defaults = _OPTIMIZERS[name]
    signature = _signature(class_name)
    valid = [p for p in signature if p not in _HIDDEN]
    params = dict(defaults)
    seen: set[str] = set()
    for key, value in raw.items():
        canon = _KEY_ALIASES.get(key, key)
        if canon in ("learning_rate", "lr"):
            raise SpecError(
                f"set the learning rate with --lr, not in --optimizer. Received: {key}={value}",
                f"e.g. --optimizer {name} --lr {value}",
            )
        if canon not in valid:
            aliases = [a for a, c in _KEY_ALIASES.items() if c in valid]
            raise SpecError(
                f"optimizer {name} has no key `{key}`", _spec.did_you_mean(key, valid + aliases)
            )
        if canon in seen:
            raise SpecError(f"`{canon}` is given twice. Received: {text}", "give it once")
        seen.add(canon)
        params[canon] = _convert(canon, key, value, signature[canon])
    for key, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
        if value is None:
            continue
        flag = "--clip-norm" if key == "clipnorm" else "--clip-value"
        if not (isinstance(value, int | float) and value > 0):
            raise SpecError(f"{flag} must be > 0. Received: {flag} {value}", f"e.g. {flag} 1.0")
        if key in params and params[key] != value:
            raise SpecError(
                f"{flag} {value} contradicts {key}={params[key]} in --optimizer",
                "give it in one place",
            )
        params[key] = float(value)
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if params.get(k) is not None]
    if len(clips) > 1:
        raise SpecError(
            f"{' and '.join(clips)} cannot be used together: a Keras optimizer clips gradients one way",
            "keep one of --clip-norm / --clip-value (or one clip key in --optimizer)",
        )
    factory = OptimizerFactory(name, class_name, params)
    factory(None)  # let Keras check combinations (e.g. clipnorm with global_clipnorm) now
    return factory


def parse_optimizer(
    text: str | None, lr=None, *, clipnorm: float | None = None, clipvalue: float | None = None
):
    """A Keras optimizer from a spec and a learning rate (float or schedule).

        opt = parse_optimizer("ftrl:l1=0.01", 0.05)

    Args:
        text: `NAME[:key=value,...]`; None or "" means adam.
        lr: a float, a `LearningRateSchedule`, or None for the Keras default.
        clipnorm: `--clip-norm`.
        clipvalue: `--clip-value`.

    Returns:
        A new `keras.optimizers.Optimizer`.

    Raises:
        SpecError: see `optimizer_factory`.
    """
    return optimizer_factory(text, clipnorm=clipnorm, clipvalue=clipvalue)(lr)


def _signature(class_name: str) -> dict[str, inspect.Parameter]:
    import keras

    return dict(inspect.signature(getattr(keras.optimizers, class_name).__init__).parameters)


def _convert(canon: str, spelled: str, value: str, param: inspect.Parameter):
    default = param.default
    if isinstance(default, bool) or canon in ("nesterov", "amsgrad", "centered", "use_ema"):
        return _spec.boolean(spelled, value)
    if canon in _INTEGER:
        return _spec.integer(spelled, value, lo=1)
    lo, hi, lo_open, hi_open = _BOUNDS.get(canon, (None, None, False, False))
    return _spec.number(spelled, value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
