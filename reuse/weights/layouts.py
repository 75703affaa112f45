"""Weight layouts per framework: which Keras weight a source parameter fills, and how to convert it.

Keras / TensorFlow parameter names (`kernel`, `gamma`, `moving_mean`) are copied as they are.
PyTorch's (`weight`, `bias`, `running_mean`, `running_var`) are converted:

    Linear           (out, in)            -> Dense kernel (in, out)
    Linear after a Flatten of a (H, W, C) map: columns reordered from PyTorch's C·H·W to
                                             Keras' H·W·C flatten order, then transposed
                                             (`flatten_order`: "auto" skips the reorder when a
                                             Permute feeds the Flatten, "nchw" always reorders,
                                             "none" never does)
    Conv1d/2d/3d     (out, in, k...)      -> (k..., in, out)
    depthwise conv   (in·mult, 1, k...)   -> (k..., in, mult)
    BatchNorm        weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
                                             moving_variance (and a warning when eps differs)
    Embedding        (vocab, dim)         -> embeddings, unchanged
    PReLU            (C,) per channel, (1,) shared -> alpha reshaped (or broadcast) to the
                                             Keras alpha shape, e.g. (1, 1, C) with
                                             shared_axes=[1, 2]
    LayerNorm, GroupNorm weight, bias     -> gamma, beta
    grouped conv     (out, in/groups, k...) -> (k..., in/groups, out), as any conv
    ConvTranspose    (in, out, k...)      -> (k..., out, in), the conv transpose
    LSTM / GRU / RNN weight_ih_l0 (G·H, in), weight_hh_l0 (G·H, H) -> kernel (in, G·H),
                                             recurrent_kernel (H, G·H); bias_ih_l0 and
                                             bias_hh_l0 summed (LSTM: gates i, f, g, o in
                                             both; RNN), or stacked as the (2, 3H) bias of a
                                             GRU(reset_after=True), gates reordered from
                                             PyTorch's (r, z, n) to Keras' (z, r, h)
    MultiheadAttention in_proj_weight (3E, E) split into q, k, v -> query/key/value kernels
                                             (E, heads, E/heads); out_proj (E, E) ->
                                             attention_output kernel (heads, E/heads, E)

`expand_torch_tensors` prepares the recurrent and attention tensors by name before matching
(one PyTorch tensor can fill several Keras weights, two can fill one). Other recurrent layers
(Bidirectional, ConvLSTM, a GRU with reset_after=False) are refused rather than filled with
wrong values; so are stacked layers' `_l1`, `_l2`... tensors unless `--map` renames them to
`_l0` of their own Keras layer (`--map 'rnn\\.(.*)_l1=rnn2.\1_l0'`).
"""

from __future__ import annotations

import re
from itertools import permutations

import numpy as np

from reuse.core.errors import WeightImportError
from reuse.surgery import layer_kinds

TORCH_BN_EPS = 1e-5

# How a Linear after a Flatten is reordered (`--flatten-order`).
FLATTEN_ORDERS = ("auto", "nchw", "none")

# Keras / TensorFlow parameter names, and the Keras weight each means.
KERAS_PARAMS = {
    "kernel": "kernel",
    "weights": "kernel",
    "w": "kernel",
    "bias": "bias",
    "biases": "bias",
    "b": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
    "embeddings": "embeddings",
    "depthwise_kernel": "depthwise_kernel",
    "pointwise_kernel": "pointwise_kernel",
    "recurrent_kernel": "recurrent_kernel",
    "scale": "gamma",
    "offset": "beta",
}
TORCH_PARAMS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def short_name(weight) -> str:
    """A Keras variable's own name without its layer path or `:0` (`dense/kernel:0` -> `kernel`)."""
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


# Recurrent layers whose PyTorch weights are converted, and their number of gates.
RNN_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
_RNN_PARAM = re.compile(r"(weight_ih|weight_hh|bias)_l(\d+)")
# MultiheadAttention parameters (after `expand_torch_tensors`) and the Keras weight each fills.
_MHA_PARAMS = {
    f"{src}_proj_{kind}": f"{dst}/{'kernel' if kind == 'weight' else 'bias'}"
    for src, dst in (("q", "query"), ("k", "key"), ("v", "value"), ("out", "attention_output"))
    for kind in ("weight", "bias")
}


def _converted_recurrent(layer) -> bool:
    cls = type(layer).__name__
    if cls == "GRU":
        return bool(getattr(layer, "reset_after", getattr(layer.cell, "reset_after", False)))
    return cls in RNN_GATES


def expand_torch_tensors(tensors: list[tuple[str, object]]) -> list[tuple[str, object, str | None]]:
    """PyTorch tensors prepared for one-to-one matching, by name: (name, value, origin).

    - `X.bias_ih_lN` and `X.bias_hh_lN` become one `X.bias_lN` of shape (2, G·H) (origin
      "bias_ih_lN, bias_hh_lN stacked"): a Keras LSTM sums them, a GRU keeps both rows;
    - `X.in_proj_weight` / `X.in_proj_bias` of a MultiheadAttention split into `X.q_proj_*`,
      `X.k_proj_*`, `X.v_proj_*`; `X.out_proj.weight` / `.bias` become `X.out_proj_weight` /
      `_bias` (the names of the attention layer's own parameters).

    Other tensors pass unchanged, with origin None. Values may be None (names only).
    """
    names = {name for name, _ in tensors}
    mha = {name[: -len("in_proj_weight")] for name in names if name.endswith("in_proj_weight")}
    out: list[tuple[str, object, str | None]] = []
    for name, value in tensors:
        m = re.fullmatch(r"(.*)bias_(ih|hh)_l(\d+)", name)
        if m and {f"{m[1]}bias_ih_l{m[3]}", f"{m[1]}bias_hh_l{m[3]}"} <= names:
            if m[2] == "ih":
                other = dict(tensors)[f"{m[1]}bias_hh_l{m[3]}"]
                stacked = None if value is None else np.stack([value, other])
                origin = f"{name}, {m[1]}bias_hh_l{m[3]} stacked"
                out.append((f"{m[1]}bias_l{m[3]}", stacked, origin))
            continue
        prefix = next((p for p in mha if name.startswith(p)), None)
        rest = name[len(prefix) :] if prefix is not None else ""
        if prefix is not None and rest in ("in_proj_weight", "in_proj_bias"):
            kind = rest.rsplit("_", 1)[1]
            parts = [None] * 3 if value is None else np.split(value, 3, axis=0)
            for letter, part in zip("qkv", parts, strict=True):
                out.append((f"{prefix}{letter}_proj_{kind}", part, f"split from {name}"))
            continue
        if prefix is not None and rest in ("out_proj.weight", "out_proj.bias"):
            out.append((f"{prefix}{rest.replace('.', '_')}", value, f"renamed from {name}"))
            continue
        out.append((name, value, None))
    return out


def refuse_recurrent(layer, path: str, tensor_name: str) -> None:
    """Raise when `layer` is recurrent and its PyTorch layout is not converted (all but LSTM,
    SimpleRNN and GRU with reset_after=True).

    Raises:
        WeightImportError: `layer` is one of `layer_kinds.RECURRENT` and not converted.
    """
    cls = type(layer).__name__
    if cls in layer_kinds.RECURRENT and not _converted_recurrent(layer):
        raise WeightImportError(
            f"layer '{path}' ({cls}): reuse does not convert recurrent weight layouts yet "
            f"(source tensor '{tensor_name}'), and will not fill it with wrong values",
            "leave it out with --layers, drop its tensors with --map 'NAME=', or set its weights yourself",
        )


def convert(
    param: str, value: np.ndarray, layer, path: str, row: dict, *, flatten_order: str = "auto"
):
    """The Keras weight that parameter `param` of a source tensor fills, and its value in Keras layout.

    Args:
        param: the parameter part of the source name (`weight`, `kernel`, `running_var`).
        value: the source tensor, in the source framework's layout.
        layer: the target Keras layer.
        path: the layer's path in the model, for messages.
        row: the report row of the tensor; its `note` is set when nothing fits, and its
            `name` is quoted in errors.
        flatten_order: one of FLATTEN_ORDERS, for a Linear weight after a Flatten.

    Returns:
        (target weight name or None when nothing fits, the converted value, a description of
        the conversion or None when the value is copied as it is).

    Raises:
        WeightImportError: a PyTorch `weight` for a layer class whose layout is unknown.
    """
    cls = type(layer).__name__
    rnn = _RNN_PARAM.fullmatch(param)
    if rnn and _converted_recurrent(layer):
        return _recurrent(rnn[1], int(rnn[2]), value, layer, cls, row)
    if cls == "MultiHeadAttention" and param in _MHA_PARAMS:
        return _attention(param, value, layer)
    if param in KERAS_PARAMS:
        return _keras_param(param, value, layer, cls)
    if param not in TORCH_PARAMS:
        weights = [short_name(w) for w in layer.weights]
        if param in weights:
            return param, value, None
        row["note"] = (
            f"parameter '{param}' is not a weight of '{path}' ({cls}: {', '.join(weights)})"
        )
        return None, value, None
    return _torch_param(param, value, layer, cls, path, row, flatten_order)


def _keras_param(param: str, value: np.ndarray, layer, cls: str):
    wanted = KERAS_PARAMS[param]
    if cls in layer_kinds.NORMALIZATION and wanted == "kernel":
        wanted = "gamma"
    if cls in layer_kinds.NORMALIZATION and wanted == "bias":
        wanted = "beta"
    if cls in layer_kinds.DEPTHWISE and wanted in ("kernel", "depthwise_kernel"):
        names = [short_name(w) for w in layer.weights]
        wanted = "depthwise_kernel" if "depthwise_kernel" in names else "kernel"
    if cls == "Embedding" and wanted == "kernel":
        wanted = "embeddings"
    return wanted, value, None


def _torch_param(
    param: str, value: np.ndarray, layer, cls: str, path: str, row: dict, flatten_order: str
):
    if param == "running_mean":
        return "moving_mean", value, "running_mean → moving_mean"
    if param == "running_var":
        return "moving_variance", value, "running_var → moving_variance"
    if param == "bias":
        if cls in layer_kinds.NORMALIZATION:
            return "beta", value, "bias → beta"
        return "bias", value, None
    # param == "weight"
    if cls in layer_kinds.NORMALIZATION:
        return "gamma", value, "weight → gamma"
    if cls == "Embedding":
        return "embeddings", value, None
    if cls == "Dense":
        return _linear(value, layer, flatten_order)
    if cls == "PReLU":
        return _prelu(value, layer)
    if cls in layer_kinds.CONV:
        if value.ndim < 3:
            return "kernel", value, None
        axes = (*range(2, value.ndim), 1, 0)
        return "kernel", value.transpose(axes).copy(), f"transpose {axes}"
    if cls in layer_kinds.DEPTHWISE:
        return _depthwise(value, layer)
    raise WeightImportError(
        f"layer '{path}' ({cls}): reuse does not know how PyTorch lays out this layer's 'weight' "
        f"(source tensor '{row['name']}'), and will not fill it with wrong values",
        "leave it out with --layers, or drop the tensor with --map 'NAME='",
    )


def _linear(value: np.ndarray, layer, flatten_order: str = "auto"):
    """A PyTorch Linear weight (out, in) as a Dense kernel (in, out), in Keras flatten order."""
    if value.ndim != 2:
        return "kernel", value, None
    flat = flatten_input_shape(layer, flatten_order)
    if flat is not None and int(np.prod(flat)) == value.shape[1] and len(flat) >= 2:
        # PyTorch flattens (C, H, W); Keras' Flatten after channels-last layers gives (H, W, C).
        c, spatial = flat[-1], flat[:-1]
        v = value.reshape(value.shape[0], c, *spatial)
        v = v.transpose(0, *range(2, v.ndim), 1).reshape(value.shape[0], -1)
        return (
            "kernel",
            v.T.copy(),
            f"(out, C·{'·'.join('HWD'[: len(spatial)])}) → rows in Keras flatten order, transpose",
        )
    return "kernel", value.T.copy(), "transpose (out, in) → (in, out)"


def _gates(value: np.ndarray, cls: str) -> np.ndarray:
    """Gate blocks along axis 0 in Keras' order (a GRU's (r, z, n) becomes (z, r, h))."""
    if cls != "GRU":
        return value
    r, z, n = np.split(value, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def _recurrent(kind: str, index: int, value: np.ndarray, layer, cls: str, row: dict):
    """A PyTorch LSTM / GRU / RNN tensor (layer `index` of a stack) as the Keras weight."""
    if index != 0:
        row["note"] = (
            f"stacked layer {index} of a PyTorch {cls}: map it to its own Keras layer, "
            f"e.g. --map 'NAME\\.(.*)_l{index}=OTHER.\\1_l0'"
        )
        return None, value, None
    reorder = " (gates r, z, n → z, r, h)" if cls == "GRU" else ""
    if kind in ("weight_ih", "weight_hh"):
        wanted = "kernel" if kind == "weight_ih" else "recurrent_kernel"
        return wanted, _gates(value, cls).T.copy(), f"transpose (G·H, in) → (in, G·H){reorder}"
    # kind == "bias": (2, G·H), bias_ih and bias_hh stacked by expand_torch_tensors
    if value.ndim == 1:  # only one of the two biases was given
        return "bias", _gates(value, cls), f"one bias{reorder}"
    if cls == "GRU":
        both = np.stack([_gates(value[0], cls), _gates(value[1], cls)])
        return "bias", both, f"input and recurrent biases as rows{reorder}"
    return "bias", value[0] + value[1], "bias_ih + bias_hh"


def _attention(param: str, value: np.ndarray, layer):
    """A MultiheadAttention projection as the Keras MultiHeadAttention's einsum weights."""
    wanted = _MHA_PARAMS[param]
    target = next((w for w in layer.weights if w.path.endswith("/" + wanted)), None)
    if target is None:
        return wanted, value, None
    shape = tuple(int(d) for d in target.shape)
    if wanted.endswith("/kernel") and value.ndim == 2 and value.size == int(np.prod(shape)):
        return wanted, value.T.reshape(shape).copy(), f"transpose, reshape → {shape}"
    if value.size == int(np.prod(shape)):
        return wanted, value.reshape(shape).copy(), f"reshape → {shape}"
    return wanted, value, None


def _prelu(value: np.ndarray, layer):
    """A PyTorch PReLU weight, (C,) per channel or (1,) shared, as the Keras alpha's shape."""
    alpha = next((w for w in layer.weights if short_name(w) == "alpha"), None)
    if alpha is None:
        return "alpha", value, None
    shape = tuple(int(d) for d in alpha.shape)
    size = int(np.prod(shape))
    if value.shape == shape:
        return "alpha", value, None
    if value.size == size:
        return "alpha", value.reshape(shape).copy(), f"reshape {tuple(value.shape)} → {shape}"
    if value.size == 1:
        return "alpha", np.full(shape, value.reshape(()), value.dtype), f"broadcast (1,) → {shape}"
    return "alpha", value, None


def _depthwise(value: np.ndarray, layer):
    """A PyTorch grouped-conv weight (in·mult, 1, k...) as a Keras depthwise kernel (k..., in, mult)."""
    # Keras 3 calls the depthwise weight `kernel`; older versions `depthwise_kernel`.
    kernel = next(
        (w for w in layer.weights if short_name(w) in ("kernel", "depthwise_kernel")), None
    )
    wanted = short_name(kernel) if kernel is not None else "kernel"
    if kernel is None or value.ndim < 3 or value.shape[1] != 1:
        return wanted, value, None
    in_ch = int(kernel.shape[-2])
    mult = value.shape[0] // max(in_ch, 1)
    v = value.reshape(in_ch, mult, *value.shape[2:])  # (in, mult, k...)
    v = v.transpose(*range(2, v.ndim), 0, 1)
    return wanted, v.copy(), "depthwise (in·mult, 1, k...) → (k..., in, mult)"


def flatten_input_shape(layer, flatten_order: str = "auto") -> tuple | None:
    """The per-sample input shape (H, W, C) of the Flatten feeding `layer`, when its rows need
    PyTorch's C·H·W order turned into Keras' H·W·C; None when they do not.

    Args:
        layer: a Dense layer.
        flatten_order: "auto" (reorder unless a Permute feeds the Flatten: the model already
            orders its features itself, as MTCNN's `x.permute(0, 3, 2, 1)` does), "nchw"
            (always reorder after a Flatten of a map), "none" (never reorder).
    """
    if flatten_order == "none":
        return None
    op = _producer(lambda: layer.input)
    if type(op).__name__ != "Flatten":
        return None
    if flatten_order == "auto" and type(_producer(lambda: op.input)).__name__ == "Permute":
        return None
    try:
        shape = op.input.shape
    except Exception:  # noqa: BLE001
        return None
    dims = tuple(shape[1:])
    if len(dims) < 2 or any(d is None for d in dims):
        return None
    return tuple(int(d) for d in dims)


def _producer(get_tensor):
    """The layer that produced the symbolic tensor `get_tensor()` returns, or None."""
    try:
        history = get_tensor()._keras_history
        return history[0] if isinstance(history, tuple) else history.operation
    except Exception:  # noqa: BLE001 - a layer used several times, an input, not in a graph
        return None


def mismatch_hint(
    raw: np.ndarray, converted: np.ndarray, target: tuple, conversion: str | None
) -> str:
    """A note for a shape mismatch: both shapes, and a transpose or rename that would fit."""
    text = f"source {tuple(converted.shape)} vs target {target}"
    if conversion:
        text = f"after {conversion}: " + text
    if tuple(raw.shape) == target and conversion:
        return (
            text
            + "; the raw tensor already fits: it may be in Keras layout — rename it to 'kernel' with --map"
        )
    if 2 <= raw.ndim <= 5:
        for axes in permutations(range(raw.ndim)):
            if axes != tuple(range(raw.ndim)) and tuple(raw.shape[a] for a in axes) == target:
                return text + f"; transpose{axes} of the source would fit"
    return text


def bn_epsilon_warnings(plan, torch_eps: dict[str, float], layer_of) -> list[str]:
    """Warnings for BatchNorm layers filled from PyTorch whose epsilon differs from the source's.

    Args:
        plan: the assignments (with `layer`, `layer_path` and `row`) of a PyTorch source.
        torch_eps: PyTorch module name -> its BatchNorm eps, when the module is known;
            otherwise PyTorch's default (1e-5) is assumed.
        layer_of: maps a source tensor name to its module name (`bn.weight` -> `bn`).

    Returns:
        One message per BatchNormalization layer whose epsilon differs.
    """
    warnings = []
    seen = set()
    for a in plan:
        layer = a.layer
        if (
            a.layer_path in seen
            or type(layer).__name__ != "BatchNormalization"
            or not a.row.get("conversion")
        ):
            continue
        seen.add(a.layer_path)
        eps = torch_eps.get(layer_of(a.row["name"]))
        known = eps is not None
        eps = eps if known else TORCH_BN_EPS
        if abs(float(layer.epsilon) - eps) > 1e-12:
            origin = (
                f"the PyTorch module uses eps={eps:g}"
                if known
                else f"PyTorch's default BatchNorm eps is {eps:g}"
            )
            warnings.append(
                f"{a.layer_path}: Keras epsilon={float(layer.epsilon):g} but {origin}; outputs will differ "
                f"slightly — build the layer with epsilon={eps:g}"
            )
    return warnings
