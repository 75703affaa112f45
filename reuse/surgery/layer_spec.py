"""The layer-list grammar of `--head` and `--arch`, and the Keras layers it builds.

    parse_layer_spec("dense:100:elu,dropout:0.3,dense:5:softmax")      # --head
    shape, specs = parse_arch_spec("input:28x28x1,conv2d:8:3:relu,gap,dense:10:softmax")
    model = build_from_spec("input:784,dense:300:relu:name=hidden1,dense:10:softmax")

A spec is a comma-separated list of layers; a layer is `KIND[:ARG...][:key=value...]`, with
positional arguments in a fixed order and options anywhere after the kind. `name=NAME` works
in every layer. Both options share the kinds, the aliases (`bn` = `batchnorm`, `silu` = `swish`,
...) and the error messages; `--head` builds the kinds a head on extracted features needs
(`HEAD_KINDS`), `--arch` every kind, and starts with `input:SHAPE`. Keras is imported inside
the builders only, so the help constants are free to import.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, fields

from reuse.core import spec_grammar as _spec
from reuse.core.errors import SpecError

# The activations `--head` documents; the first six get He or LeCun initialization in a head.
ACTIVATIONS = [
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "tanh",
    "sigmoid",
    "softmax",
    "linear",
]
# Further Keras activations, accepted as well (`--arch` has always passed names to Keras).
KERAS_ACTIVATIONS = [
    "relu6",
    "celu",
    "mish",
    "softplus",
    "softsign",
    "exponential",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "hard_shrink",
    "soft_shrink",
    "tanh_shrink",
    "log_sigmoid",
    "log_softmax",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "glu",
]
KIND_ALIASES = {
    "batchnormalization": "batchnorm",
    "bn": "batchnorm",
    "globalaveragepooling": "gap",
    "alpha_dropout": "alphadropout",
    "gaussian_noise": "gaussiannoise",
    "noise": "gaussiannoise",
}
ACTIVATION_ALIASES = {
    "silu": "swish",
    "leakyrelu": "leaky_relu",
    "none": "linear",
    "identity": "linear",
}


@dataclass(frozen=True)
class _Kind:
    args: tuple[str, ...]  # positional argument names, in order
    required: int  # how many of them must be given
    need: str  # the error when the count is wrong
    usage: str  # the token's form, e.g. dense:UNITS[:ACTIVATION]
    example: str
    about: str  # one line for the help texts
    options: tuple[str, ...] = ()  # key=value options besides name


_KINDS: dict[str, _Kind] = {
    "dense": _Kind(
        ("UNITS", "ACTIVATION"),
        1,
        "needs UNITS and at most one ACTIVATION",
        "dense:UNITS[:ACTIVATION]",
        "dense:100:elu",
        "fully connected layer (activation defaults to linear)",
    ),
    "dropout": _Kind(
        ("RATE",),
        1,
        "needs exactly one number",
        "dropout:RATE",
        "dropout:0.3",
        "drop a fraction 0 <= RATE < 1 of the inputs while training",
    ),
    "alphadropout": _Kind(
        ("RATE",),
        1,
        "needs exactly one number",
        "alphadropout:RATE",
        "alphadropout:0.1",
        "dropout that keeps SELU's self-normalization",
    ),
    "gaussiannoise": _Kind(
        ("STD",),
        1,
        "needs exactly one number",
        "gaussiannoise:STD",
        "gaussiannoise:0.1",
        "add N(0, STD^2) noise while training",
    ),
    "batchnorm": _Kind(
        (),
        0,
        "takes no arguments",
        "batchnorm[:eps=E][:momentum=M]",
        "batchnorm:eps=1e-5",
        "batch normalization (Keras defaults eps=1e-3, momentum=0.99)",
        ("eps", "momentum"),
    ),
    "activation": _Kind(
        ("ACTIVATION",),
        1,
        "needs exactly one activation name",
        "activation:NAME",
        "activation:elu",
        "an activation on its own (e.g. after batchnorm)",
    ),
    "flatten": _Kind(
        (), 0, "takes no arguments", "flatten", "flatten", "flatten to one vector per sample"
    ),
    "gap": _Kind(
        (),
        0,
        "takes no arguments",
        "gap",
        "gap",
        "global average pooling (1D/2D/3D from the input rank)",
    ),
    "conv1d": _Kind(
        ("FILTERS", "KERNEL", "ACTIVATION"),
        2,
        "needs FILTERS, KERNEL and at most one ACTIVATION",
        "conv1d:FILTERS:KERNEL[:ACTIVATION][:stride=S][:padding=same|valid|causal]",
        "conv1d:16:3:relu",
        "1D convolution",
        ("stride", "padding"),
    ),
    "conv2d": _Kind(
        ("FILTERS", "KERNEL", "ACTIVATION"),
        2,
        "needs FILTERS, KERNEL and at most one ACTIVATION",
        "conv2d:FILTERS:KERNEL[:ACTIVATION][:stride=S][:padding=same|valid]",
        "conv2d:32:3:relu:padding=same",
        "2D convolution",
        ("stride", "padding"),
    ),
    "depthwise2d": _Kind(
        ("KERNEL", "ACTIVATION"),
        1,
        "needs KERNEL and at most one ACTIVATION",
        "depthwise2d:KERNEL[:ACTIVATION][:mult=M][:padding=same|valid]",
        "depthwise2d:3:mult=2",
        "2D depthwise convolution",
        ("mult", "padding"),
    ),
    "maxpool2d": _Kind(
        ("SIZE",),
        0,
        "takes at most one SIZE",
        "maxpool2d[:SIZE]",
        "maxpool2d:2",
        "2D max pooling (SIZE defaults to 2)",
    ),
    "avgpool2d": _Kind(
        ("SIZE",),
        0,
        "takes at most one SIZE",
        "avgpool2d[:SIZE]",
        "avgpool2d:2",
        "2D average pooling (SIZE defaults to 2)",
    ),
    "embedding": _Kind(
        ("VOCAB", "UNITS"),
        2,
        "needs VOCAB and UNITS",
        "embedding:VOCAB:UNITS",
        "embedding:1000:64",
        "a learned UNITS-vector per integer token below VOCAB",
    ),
}
HEAD_KINDS = (
    "dense",
    "dropout",
    "alphadropout",
    "gaussiannoise",
    "batchnorm",
    "activation",
    "flatten",
    "gap",
)
ARCH_KINDS = tuple(_KINDS)
# Positional argument -> LayerSpec field.
_FIELD = {
    "UNITS": "units",
    "FILTERS": "units",
    "ACTIVATION": "activation",
    "RATE": "rate",
    "STD": "rate",
    "KERNEL": "kernel",
    "SIZE": "size",
    "VOCAB": "vocab",
}
# key=value option -> LayerSpec field.
_OPTION_FIELD = {
    "stride": "stride",
    "padding": "padding",
    "mult": "multiplier",
    "eps": "epsilon",
    "momentum": "momentum",
    "name": "name",
}
_PADDINGS = ("same", "valid", "causal")


def _tokens_help(kinds) -> str:
    lines = []
    for k in kinds:
        usage, about = _KINDS[k].usage, _KINDS[k].about
        if len(usage) > 26:
            lines += [f"  {usage}", f"{'':29}{about}"]
        else:
            lines.append(f"  {usage:<26} {about}")
    return "\n".join(lines)


def _aliases_help() -> str:
    by_kind: dict[str, list[str]] = {}
    for alias, kind in {**KIND_ALIASES, **ACTIVATION_ALIASES}.items():
        by_kind.setdefault(kind, []).append(alias)
    return "; ".join(f"{'/'.join(a)} = {k}" for k, a in by_kind.items())


ALIASES_HELP = f"Aliases: {_aliases_help()}."
_ALIASES_BLOCK = textwrap.fill(ALIASES_HELP, 92)
ACTIVATIONS_LINE = (
    f"Activations: {', '.join(ACTIVATIONS)}, and the other Keras activations "
    "(relu6, mish, softplus, ...)."
)
ACTIVATIONS_HELP = textwrap.fill(
    f"ACTIVATION / NAME: {', '.join(ACTIVATIONS)}; also the other Keras activations: "
    f"{', '.join(KERAS_ACTIVATIONS)}.",
    92,
)
GRAMMAR_HELP = f"""\
--head auto | LAYER[,LAYER...]
{_tokens_help(HEAD_KINDS)}
  name=NAME works in every layer (default head_<kind>_<n>).
{ACTIVATIONS_HELP}
{_ALIASES_BLOCK}
Init: He normal for relu/leaky_relu/elu/gelu/swish, LeCun normal for selu, Glorot uniform
otherwise. auto: softmax over k classes (integer labels), sigmoid (one 0/1 column), or linear
(float targets), with the matching loss.
Example: dense:100:elu,dropout:0.3,dense:5:softmax"""
ARCH_HELP = f"""\
--arch input:SHAPE,LAYER[,LAYER...]     SHAPE: 784 or 28x28x1
{_tokens_help(ARCH_KINDS)}
  name=NAME works in every layer (default <kind>_<n>).
{ACTIVATIONS_HELP}
{_ALIASES_BLOCK}
Example: input:784,dense:300:relu:name=hidden1,dense:10:softmax"""
# One-line forms for the CLI option help.
HEAD_TOKENS = ", ".join(_KINDS[k].usage for k in HEAD_KINDS)
ARCH_TOKENS = ", ".join(_KINDS[k].usage for k in ARCH_KINDS)


@dataclass(frozen=True, repr=False)
class LayerSpec:
    """One layer of a `--head` or `--arch` spec; fields a kind does not use stay None.

    Attributes:
        kind: a key of the grammar (`dense`, `conv2d`, `batchnorm`, ...), aliases resolved.
        units: output units of dense, filters of a convolution, vector size of embedding.
        activation: activation of dense, convolutions and activation (canonical name).
        rate: dropout rate, or the noise standard deviation of gaussiannoise.
        kernel: kernel size of a convolution (one int, the same along every axis).
        size: pool size of maxpool2d / avgpool2d (None: 2).
        vocab: number of tokens of an embedding.
        stride: stride of a convolution (None: 1).
        padding: "same", "valid" or "causal" (None: valid).
        multiplier: depth multiplier of depthwise2d (None: 1).
        epsilon: batchnorm epsilon (None: Keras' 1e-3).
        momentum: batchnorm momentum (None: Keras' 0.99).
        name: the layer name (None: `<prefix>_<kind>_<n>`).
    """

    kind: str
    units: int | None = None
    activation: str | None = None
    rate: float | None = None
    kernel: int | None = None
    size: int | None = None
    vocab: int | None = None
    stride: int | None = None
    padding: str | None = None
    multiplier: int | None = None
    epsilon: float | None = None
    momentum: float | None = None
    name: str | None = None

    def __repr__(self) -> str:
        set_fields = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)[1:]
            if getattr(self, f.name) is not None
        ]
        return f"LayerSpec({', '.join([f'kind={self.kind!r}', *set_fields])})"

    def __str__(self) -> str:
        parts = [self.kind]
        kind = _KINDS.get(self.kind)
        for arg in kind.args if kind else ():
            value = getattr(self, _FIELD[arg])
            if value is None:
                break
            parts.append(f"{value:g}" if isinstance(value, float) else str(value))
        for key, field_name in _OPTION_FIELD.items():
            value = getattr(self, field_name)
            if value is not None:
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return ":".join(parts)


def format_layer_spec(specs: list[LayerSpec]) -> str:
    """The spec text of `specs` (round-trips through `parse_layer_spec`)."""
    return ",".join(str(s) for s in specs)


def parse_layer_spec(
    text: str, *, option: str = "--head", kinds: tuple[str, ...] = HEAD_KINDS
) -> list[LayerSpec]:
    """Parse a layer list such as `dense:100:elu,dropout:0.3,dense:5:softmax`.

        parse_layer_spec("dense:10:relu,bn")
        # [LayerSpec(kind='dense', units=10, activation='relu'), LayerSpec(kind='batchnorm')]

    Args:
        text: comma-separated layers in the grammar of `GRAMMAR_HELP` (not `auto`).
        option: the option named in error messages.
        kinds: the kinds allowed (default: the head's, `HEAD_KINDS`; `ARCH_KINDS` for all).

    Returns:
        The layers, bottom to top.

    Raises:
        SpecError: an empty spec or layer, an unknown or disallowed kind, an unknown
            activation or option, a missing or out-of-range argument.
    """
    if text is None or not text.strip():
        auto = "auto or " if option == "--head" else ""
        raise SpecError(
            f"{option} is empty", f"give {auto}layers, e.g. {option} dense:100:elu,dense:5:softmax"
        )
    specs = []
    for token in text.split(","):
        token = token.strip()
        if not token:
            raise SpecError(
                f"{option} has an empty layer (two commas in a row?). Received: {text}",
                "separate layers with one comma",
            )
        specs.append(_parse_token(token, option, kinds))
    return specs


def parse_arch_spec(text: str) -> tuple[tuple[int, ...], list[LayerSpec]]:
    """Parse an `--arch` spec: `input:SHAPE` first, then layers of any kind (`ARCH_KINDS`).

        parse_arch_spec("input:28x28x1,conv2d:8:3:relu,gap,dense:10")
        # ((28, 28, 1), [LayerSpec(kind='conv2d', ...), ...])

    Empty layers (a trailing comma) are skipped.

    Returns:
        (per-sample input shape, the layers bottom to top).

    Raises:
        SpecError: no `input:` first, a bad shape, or a bad layer (as `parse_layer_spec`).
    """
    tokens = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not tokens or not tokens[0].lower().startswith("input:"):
        raise SpecError(
            f"an --arch spec starts with the input shape. Received: {text!r}",
            "e.g. --arch 'input:784,dense:300:relu,dense:10:softmax'",
        )
    shape_text = tokens[0].split(":", 1)[1]
    try:
        shape = tuple(int(d) for d in re.split(r"[x*]", shape_text) if d)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise SpecError(
            f"bad input shape in --arch. Received: {tokens[0]!r}",
            "write it as input:784 or input:28x28x1",
        )
    specs = [_parse_token(t, "--arch", ARCH_KINDS) for t in tokens[1:]]
    return shape, specs


def _parse_token(token: str, option: str, kinds: tuple[str, ...]) -> LayerSpec:
    parts = [p.strip() for p in token.split(":")]
    raw_kind = parts[0]
    kind = KIND_ALIASES.get(raw_kind.lower(), raw_kind.lower())
    what = "head" if option == "--head" else option
    if kind == "input":
        raise SpecError(
            f"'{token}': input:SHAPE is the first layer of --arch only",
            "give the input shape once, first, in --arch",
        )
    if kind not in kinds:
        if kind in _KINDS:
            raise SpecError(
                f"{option} does not take '{kind}' layers ('{token}')",
                f"{option} takes: {', '.join(kinds)}",
            )
        raise SpecError(
            f"unknown {what} layer '{raw_kind}' in '{token}'",
            _spec.did_you_mean(kind, list(kinds)),
        )
    spec_kind = _KINDS[kind]
    args = [p for p in parts[1:] if "=" not in p]
    values: dict[str, object] = {}
    for item in (p for p in parts[1:] if "=" in p):
        key, _, value = item.partition("=")
        key = key.strip().lower()
        allowed = ["name", *spec_kind.options]
        if key not in allowed:
            raise SpecError(
                f"'{token}': {kind} has no option '{key}'", _spec.did_you_mean(key, allowed)
            )
        field_name = _OPTION_FIELD[key]
        if field_name in values:
            raise SpecError(f"'{token}': `{key}` is given twice", "give each option once")
        values[field_name] = _option(key, value.strip(), token)
    usage = f"write {spec_kind.usage}, e.g. {spec_kind.example}"
    if not spec_kind.required <= len(args) <= len(spec_kind.args) or any(not a for a in args):
        message = f"'{token}': {kind} {spec_kind.need}"
        if spec_kind.args and spec_kind.need != "takes no arguments":
            message = f"'{token}' {spec_kind.need}"
        raise SpecError(message, usage)
    for name, value in zip(spec_kind.args, args, strict=False):
        values[_FIELD[name]] = _argument(name, value, token)
    if "ACTIVATION" in spec_kind.args and "activation" not in values:
        values["activation"] = "linear"
    return LayerSpec(kind, **values)


def _argument(name: str, value: str, token: str):
    if name == "ACTIVATION":
        return canonical_activation(value, token)
    if name == "RATE":
        return _spec.number("RATE", value, lo=0, hi=1, hi_open=True)
    if name == "STD":
        return _spec.number("STD", value, lo=0)
    return _spec.integer(name, value, lo=1)


def _option(key: str, value: str, token: str):
    if key == "name":
        if not value:
            raise SpecError(f"'{token}': name= is empty", "e.g. name=hidden1")
        return value
    if key == "padding":
        if value.lower() not in _PADDINGS:
            raise SpecError(
                f"'{token}': padding must be same, valid or causal. Received: padding={value}",
                "e.g. padding=same",
            )
        return value.lower()
    if key == "eps":
        return _spec.number("eps", value, lo=0, lo_open=True, example="1e-5")
    if key == "momentum":
        return _spec.number("momentum", value, lo=0, hi=1, example="0.99")
    return _spec.integer(key, value, lo=1)


def canonical_activation(name: str, token: str = "") -> str:
    """The canonical activation name (`silu` -> `swish`, `none` -> `linear`).

    Raises:
        SpecError: not an activation Keras knows, with the closest names.
    """
    key = name.strip().lower()
    key = ACTIVATION_ALIASES.get(key, key)
    known = ACTIVATIONS + KERAS_ACTIVATIONS
    if key not in known:
        where = f" in '{token}'" if token else ""
        raise SpecError(f"unknown activation '{name}'{where}", _spec.did_you_mean(key, known))
    return key


def keras_activation(name: str | None) -> str | None:
    """The name Keras takes for a canonical activation (`swish` -> `silu`)."""
    return "silu" if name == "swish" else name


def layer_names(specs: list[LayerSpec], prefix: str = "") -> list[str]:
    """Each spec's `name`, or `<prefix>_<kind>_<n>` (`<kind>_<n>` without a prefix), n from 1 per kind."""
    counts: dict[str, int] = {}
    names = []
    for spec in specs:
        counts[spec.kind] = counts.get(spec.kind, 0) + 1
        default = f"{spec.kind}_{counts[spec.kind]}"
        names.append(spec.name or (f"{prefix}_{default}" if prefix else default))
    return names


def make_layer(
    spec: LayerSpec,
    name: str,
    *,
    input_shape: tuple | None = None,
    seed: int | None = None,
    kernel_args: dict | None = None,
):
    """A fresh Keras layer for one spec.

    Args:
        spec: the layer.
        name: its Keras name.
        input_shape: the per-sample input shape; only `gap` uses it, to pick 1D/2D/3D pooling
            (2D when None).
        seed: seeds dropout and noise layers; None leaves them to Keras' global seed.
        kernel_args: extra keyword arguments for dense and convolution layers
            (`kernel_initializer`, `kernel_regularizer`, `kernel_constraint`); None keeps
            Keras' defaults.

    Raises:
        SpecError: `gap` on an input without spatial axes.
    """
    import keras

    layers = keras.layers
    kernel_args = kernel_args or {}
    act = keras_activation(spec.activation)
    kind = spec.kind
    if kind == "dense":
        return layers.Dense(spec.units, activation=act, name=name, **kernel_args)
    if kind in ("conv1d", "conv2d"):
        cls = layers.Conv1D if kind == "conv1d" else layers.Conv2D
        return cls(
            spec.units,
            spec.kernel,
            strides=spec.stride or 1,
            padding=spec.padding or "valid",
            activation=act,
            name=name,
            **kernel_args,
        )
    if kind == "depthwise2d":
        return layers.DepthwiseConv2D(
            spec.kernel,
            depth_multiplier=spec.multiplier or 1,
            padding=spec.padding or "valid",
            activation=act,
            name=name,
        )
    if kind == "batchnorm":
        return layers.BatchNormalization(
            epsilon=1e-3 if spec.epsilon is None else spec.epsilon,
            momentum=0.99 if spec.momentum is None else spec.momentum,
            name=name,
        )
    if kind in ("dropout", "alphadropout", "gaussiannoise"):
        cls = {
            "dropout": layers.Dropout,
            "alphadropout": layers.AlphaDropout,
            "gaussiannoise": layers.GaussianNoise,
        }[kind]
        return cls(spec.rate, seed=seed, name=name)
    if kind == "activation":
        return layers.Activation(act, name=name)
    if kind == "flatten":
        return layers.Flatten(name=name)
    if kind == "gap":
        return _gap(layers, input_shape, name)
    if kind in ("maxpool2d", "avgpool2d"):
        cls = layers.MaxPooling2D if kind == "maxpool2d" else layers.AveragePooling2D
        return cls(spec.size or 2, name=name)
    if kind == "embedding":
        return layers.Embedding(spec.vocab, spec.units, name=name)
    raise SpecError(f"no layer kind '{kind}'", f"use one of: {', '.join(ARCH_KINDS)}")


def _gap(layers, input_shape, name):
    rank = None if input_shape is None else len(input_shape)
    pools = {
        2: layers.GlobalAveragePooling1D,
        3: layers.GlobalAveragePooling2D,
        4: layers.GlobalAveragePooling3D,
    }
    if rank is None:
        return layers.GlobalAveragePooling2D(name=name)
    if rank not in pools:
        raise SpecError(
            f"gap needs spatial axes; its input has shape {tuple(input_shape)}",
            "drop gap, or cut at a convolutional layer",
        )
    return pools[rank](name=name)


def build_from_spec(spec: str):
    """Build a Keras model from an `--arch` spec: an input shape, then layers.

    Example:
        >>> model = build_from_spec("input:784,dense:300:relu:name=hidden1,dense:10:softmax")

    The grammar is `ARCH_HELP` (every kind of `parse_layer_spec`, plus convolutions, pooling
    and embedding). Layers keep Keras' default initializers; unnamed ones are called
    `dense_1`, `dense_2`, `conv2d_1`, ... The model is named `imported`, its input `input`.

    Returns:
        An uncompiled `keras.Model` with input shape (None, *SHAPE).

    Raises:
        SpecError: a malformed spec, or layers whose shapes do not fit together.
    """
    import keras

    shape, specs = parse_arch_spec(spec)
    inputs = keras.Input(shape, name="input")
    x = inputs
    for layer_spec, name in zip(specs, layer_names(specs), strict=True):
        try:
            x = make_layer(layer_spec, name, input_shape=tuple(x.shape[1:]))(x)
        except (ValueError, TypeError) as err:
            raise SpecError(
                f"bad --arch layer '{layer_spec}' on input shape {tuple(x.shape[1:])} "
                f"({str(err).splitlines()[0][:150]})",
                "check the layer order and sizes, e.g. flatten or gap before dense",
            ) from None
    return keras.Model(inputs, x, name="imported")
