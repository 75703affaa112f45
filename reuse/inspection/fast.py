"""Read the layer list of a `.keras` / `.h5` model file without importing TensorFlow.

TensorFlow takes seconds to import; a shell user asking "what layers are in this file?" should
not wait for it. This module reads the architecture (`config.json` in a `.keras` zip, the
`model_config` attribute of an `.h5` file) and works out what a full Keras load would report:
names, classes, parameter counts, trainable flags and output shapes, layer by layer.

It only answers when it can be sure the answer is the same. Each supported layer class has a
rule for its output shape and its weights; a model with any other class (custom layers,
Lambda, anything new) makes `try_inspect` return None, and the caller falls back to Keras. As
a last check, the parameter count computed from the config must equal the number of values
stored in the file's weights.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

from reuse.formats.paths import PathKind, classify
from reuse.inspection.result import MODEL_COLUMNS, Inspection, param_totals
from reuse.surgery.layer_kinds import SHAPE_PRESERVING


class _Decline(Exception):
    """The file holds something the fast path cannot describe with certainty."""


Shape = tuple  # (None, d1, d2, ...): None for the batch and unknown sizes


def try_inspect(path, *, verify_weights: bool = False) -> Inspection | None:
    """Rows for `path` when the file alone gives the same answer as a Keras load; else None.

    Example:
        >>> result = try_inspect("models/digits_0to4.keras")
        >>> result.fast_path if result else "needs Keras"

    Args:
        path: a `.keras` zip or an `.h5` full-model file.
        verify_weights: for `.keras` files, also open `model.weights.h5` and require the
            stored values to number exactly the computed parameters. Off by default because
            importing h5py (and numpy) costs more than the whole rest of `reuse inspect`;
            `.h5` files are always checked, since h5py is needed to read them anyway.

    Returns:
        An `Inspection` with `fast_path=True`, or None when the file must be loaded by Keras
        (unknown layer classes, unusual configs, or a file that cannot be parsed: the full
        load then produces the proper error).
    """
    p = Path(path)
    try:
        kind = classify(p)
        if kind is PathKind.KERAS:
            config, stored = _read_keras_zip(p, verify_weights)
        elif kind is PathKind.H5_MODEL:
            config, stored = _read_h5(p)
        else:
            return None
        return _describe(config, stored, str(p))
    except Exception:  # noqa: BLE001 - any surprise means "ask Keras", which reports it properly
        return None


# ---------------------------------------------------------------------------------------------
# Reading the files


def _read_keras_zip(path: Path, verify_weights: bool) -> tuple[dict, int | None]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        if not verify_weights:
            if "model.weights.h5" not in archive.namelist():
                raise _Decline("no model.weights.h5")
            return config, None
        weights = archive.read("model.weights.h5")
    import h5py

    with h5py.File(io.BytesIO(weights), "r") as f:
        return config, _count_values(f["layers"]) if "layers" in f else 0


def _read_h5(path: Path) -> tuple[dict, int]:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        version = f.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        if version.startswith("2."):
            from reuse.formats.model_io import fix_tf_keras2_config

            config = fix_tf_keras2_config(config)
        return config, _count_values(f["model_weights"]) if "model_weights" in f else 0


def _count_values(group) -> int:
    import h5py

    total = 0

    def visit(_name, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(math.prod(obj.shape))

    group.visititems(visit)
    return total


# ---------------------------------------------------------------------------------------------
# Walking the architecture in the order Keras lists layers


def _describe(config: dict, stored: int | None, path: str) -> Inspection:
    if config.get("class_name") not in _CONTAINERS:
        raise _Decline(config.get("class_name"))
    rows: list[dict] = []
    counter = [0]
    outs, weights = _container(config, None, rows, "", 0, True, counter, top=True)
    trainable = sum(n for n, t in weights if t)
    frozen = sum(n for n, t in weights if not t)
    if stored is not None and trainable + frozen != stored:
        raise _Decline(f"config gives {trainable + frozen} values, the file holds {stored}")
    return Inspection(
        kind="model",
        path=path,
        columns=list(MODEL_COLUMNS),
        rows=rows,
        totals=param_totals(trainable, frozen),
        info={"model": config["config"]["name"], **_inputs_outputs(config, rows, outs)},
        fast_path=True,
    )


def _inputs_outputs(config: dict, rows: list[dict], outs: list) -> dict:
    """{"inputs": [{name, shape}], "outputs": [{name, shape}]} of the top-level model."""
    cfg = config["config"]
    layers = cfg.get("layers", [])
    if config["class_name"] == "Sequential":
        first = layers[0] if layers else {}
        ins = (
            [first.get("config", {}).get("name")] if first.get("class_name") == "InputLayer" else []
        )
        out_names = [(layers[-1].get("config", {}).get("name") if layers else "output")]
    else:
        ins = [r[0] for r in _refs(cfg["input_layers"])]
        out_names = [r[0] for r in _refs(cfg["output_layers"])]
    shape_of = {r["name"]: r["output_shape"] for r in rows}
    if config["class_name"] == "Sequential" and ins:
        # Sequential.layers leaves the InputLayer out, so no row holds its shape.
        shape_of[ins[0]] = list(_input_layer_shape(layers[0]["config"]))
    return {
        "inputs": [{"name": n, "shape": shape_of.get(n)} for n in ins],
        "outputs": [
            {"name": n, "shape": [None if d is None else int(d) for d in s]}
            for n, s in zip(out_names, outs, strict=False)
        ],
    }


_CONTAINERS = ("Sequential", "Functional", "Model")


def _registered(spec: dict) -> bool:
    """True for a class that Keras resolves to something other than its own built-in layer."""
    module = spec.get("module")
    if module is not None and not (
        module == "keras" or module.startswith(("keras.layers", "keras.src."))
    ):
        return True
    name = spec.get("registered_name")
    return name is not None and name != spec.get("class_name")


def _container(spec, input_shapes, rows, prefix, depth, parent_trainable, counter, top=False):
    """Describe a Sequential/Functional config; return (output shapes, [(values, trainable)])."""
    if _registered(spec):
        raise _Decline("registered container")
    cls = spec["class_name"]
    cfg = spec["config"]
    if cls == "Sequential":
        return _sequential(cfg, input_shapes, rows, prefix, depth, parent_trainable, counter)
    return _functional(cfg, input_shapes, rows, prefix, depth, parent_trainable, counter)


def _layer(spec, input_shapes, rows, prefix, depth, parent_trainable, counter, record_shape=True):
    """Describe one layer (a leaf or a nested container); append its rows."""
    cls = spec.get("class_name")
    cfg = spec.get("config", {})
    name = cfg.get("name")
    if not name:
        raise _Decline("layer without a name")
    if cls in _CONTAINERS:
        # Keras re-creates a nested Sequential without its `trainable` flag (Sequential.from_config
        # does not pass it), so the loaded container reports True; a Functional keeps it.
        trainable = True if cls == "Sequential" else bool(cfg.get("trainable", True))
        row = {
            "index": None,
            "name": prefix + name,
            "class": cls,
            "output_shape": None,
            "params": 0,
            "trainable": trainable,
            "depth": depth,
        }
        rows.append(row)
        outs, weights = _container(
            spec,
            input_shapes,
            rows,
            prefix + name + "/",
            depth + 1,
            parent_trainable and trainable,
            counter,
        )
        row["params"] = sum(n for n, _ in weights)
        row["output_shape"] = _shape_out(outs) if record_shape else None
        return outs, weights
    if _registered(spec) or cls not in _RULES:
        raise _Decline(f"unknown layer class {cls}")
    outs, weight_shapes = _RULES[cls](cfg, input_shapes)
    trainable = bool(cfg.get("trainable", True))
    effective = parent_trainable and trainable
    weights = [(int(math.prod(s)), effective and t) for s, t in weight_shapes]
    rows.append(
        {
            "index": counter[0],
            "name": prefix + name,
            "class": cls,
            "output_shape": _shape_out(outs) if record_shape else None,
            "params": sum(n for n, _ in weights),
            "trainable": trainable,
            "depth": depth,
        }
    )
    counter[0] += 1
    return outs, weights


def _shape_out(outs):
    if len(outs) == 1:
        return list(outs[0])
    return [list(s) for s in outs]


def _input_layer_shape(cfg) -> Shape:
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if shape is None:
        raise _Decline("input layer without a shape")
    return tuple(shape)


def _sequential(cfg, input_shapes, rows, prefix, depth, parent_trainable, counter):
    layers = cfg["layers"]
    shape = None
    if input_shapes is not None:
        shape = input_shapes[0]
    weights: list = []
    for spec in layers:
        if spec.get("class_name") == "InputLayer":
            # Sequential.layers leaves the InputLayer out, so it gets no row.
            shape = _input_layer_shape(spec["config"])
            continue
        if shape is None:
            first = spec.get("config", {}).get("batch_input_shape") or cfg.get("build_input_shape")
            if first is None:
                raise _Decline("sequential model without an input shape")
            shape = tuple(first)
        outs, w = _layer(spec, [shape], rows, prefix, depth, parent_trainable, counter)
        if len(outs) != 1:
            raise _Decline("multi-output layer in a Sequential")
        shape = outs[0]
        weights += w
    if shape is None:
        raise _Decline("empty sequential model")
    return [shape], weights


def _history_refs(node) -> list[tuple[str, int, int]]:
    """The (layer, node, tensor) references of one inbound node, in argument order."""
    refs: list[tuple[str, int, int]] = []
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}

        def collect(value):
            if isinstance(value, dict):
                if value.get("class_name") == "__keras_tensor__":
                    h = value["config"]["keras_history"]
                    refs.append((h[0], int(h[1]), int(h[2])))
                return
            if isinstance(value, (list, tuple)):
                for v in value:
                    collect(v)

        collect(node.get("args", []))
        return refs
    for item in node:  # tf.keras 2: [[name, node_index, tensor_index, kwargs], ...]
        refs.append((item[0], int(item[1]), int(item[2])))
    return refs


def _refs(value) -> list[tuple[str, int, int]]:
    """`input_layers` / `output_layers`: one [name, node, tensor] or a list of them."""
    if value and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [(v[0], int(v[1]), int(v[2])) for v in value]


def _functional(cfg, input_shapes, rows, prefix, depth, parent_trainable, counter):
    produced: dict[str, list[list[Shape]]] = {}  # layer name -> outputs of each of its nodes
    # A nested Functional model starts with a built-in node (its own graph), so references to
    # its calls count from 1 in the config.
    offset = {
        s.get("name", s.get("config", {}).get("name")): 1
        if s.get("class_name") in ("Functional", "Model")
        else 0
        for s in cfg["layers"]
    }

    def lookup(ref):
        name, node, tensor = ref
        node -= offset[name]
        if node < 0:
            raise _Decline("reference to a model's own node")
        return produced[name][node][tensor]

    weights: list = []
    inputs = _refs(cfg["input_layers"])
    if input_shapes is not None and len(input_shapes) != len(inputs):
        raise _Decline("input count mismatch")
    for spec in cfg["layers"]:
        lcfg = spec.get("config", {})
        name = spec.get("name", lcfg.get("name"))
        nodes = spec.get("inbound_nodes", [])
        if spec.get("class_name") == "InputLayer":
            shape = _input_layer_shape(lcfg)
            _layer(spec, [], rows, prefix, depth, parent_trainable, counter, record_shape=False)
            rows[-1]["output_shape"] = list(shape)
            produced[name] = [[shape]]
            continue
        if not nodes:
            raise _Decline(f"layer {name} is not connected")
        outputs_per_node = []
        for n, node in enumerate(nodes):
            shapes = [lookup(r) for r in _history_refs(node)]
            if n == 0:
                # Keras reports a shared layer's output as that of its first call.
                outs, w = _layer(spec, shapes, rows, prefix, depth, parent_trainable, counter)
                weights += w
            else:
                # A shared layer: its weights count once.
                if spec.get("class_name") in _CONTAINERS:
                    raise _Decline("nested model called twice")
                outs, _ = _RULES[spec["class_name"]](lcfg, shapes)
            outputs_per_node.append(outs)
        produced[name] = outputs_per_node
    outs = [lookup(r) for r in _refs(cfg["output_layers"])]
    return outs, weights


# ---------------------------------------------------------------------------------------------
# Per-class rules: (config, input shapes) -> (output shapes, [(weight shape, trainable)])


def _one(inputs) -> Shape:
    if len(inputs) != 1:
        raise _Decline("expected one input")
    return tuple(inputs[0])


def _tuple(value, n: int) -> tuple:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise _Decline("rank mismatch")
    return value


def _channels_last(cfg) -> bool:
    fmt = cfg.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise _Decline(fmt)
    return fmt == "channels_last"


def _split(shape: Shape, cfg) -> tuple[tuple, int | None, bool]:
    last = _channels_last(cfg)
    return (shape[1:-1], shape[-1], True) if last else (shape[2:], shape[1], False)


def _join(shape: Shape, spatial, channels, last: bool) -> Shape:
    return (shape[0], *spatial, channels) if last else (shape[0], channels, *spatial)


def _conv_len(length, k, s, d, padding):
    if length is None:
        return None
    if padding == "valid":
        out = (length - d * (k - 1) - 1) // s + 1
    elif padding in ("same", "causal"):
        out = (length + s - 1) // s
    else:
        raise _Decline(padding)
    if out <= 0:
        raise _Decline("non-positive size")
    return out


def _conv_spatial(spatial, cfg, kernel_key="kernel_size"):
    n = len(spatial)
    ks = _tuple(cfg[kernel_key], n)
    ss = _tuple(cfg.get("strides", 1), n)
    ds = _tuple(cfg.get("dilation_rate", 1), n)
    padding = cfg.get("padding", "valid").lower()
    if padding == "causal" and n != 1:
        raise _Decline("causal padding")
    return ks, tuple(
        _conv_len(L, k, s, d, padding) for L, k, s, d in zip(spatial, ks, ss, ds, strict=True)
    )


def _need(value):
    if value is None:
        raise _Decline("weight shape depends on an unknown size")
    return value


def _bias(cfg, n):
    return [((n,), True)] if cfg.get("use_bias", True) else []


def _no_lora(cfg):
    if cfg.get("lora_rank"):
        raise _Decline("LoRA")
    if cfg.get("quantization_config") or cfg.get("quantization_mode"):
        raise _Decline("quantized")


def _conv(rank):
    def rule(cfg, inputs):
        _no_lora(cfg)
        shape = _one(inputs)
        if len(shape) != rank + 2:
            raise _Decline("rank")
        spatial, ch, last = _split(shape, cfg)
        groups = int(cfg.get("groups", 1))
        filters = int(cfg["filters"])
        ks, out = _conv_spatial(spatial, cfg)
        cin = _need(ch)
        if cin % groups:
            raise _Decline("groups")
        weights = [((*ks, cin // groups, filters), True), *_bias(cfg, filters)]
        return [_join(shape, out, filters, last)], weights

    return rule


def _depthwise(rank):
    def rule(cfg, inputs):
        shape = _one(inputs)
        if len(shape) != rank + 2:
            raise _Decline("rank")
        spatial, ch, last = _split(shape, cfg)
        dm = int(cfg.get("depth_multiplier", 1))
        ks, out = _conv_spatial(spatial, cfg)
        cin = _need(ch)
        weights = [((*ks, cin, dm), True), *_bias(cfg, cin * dm)]
        return [_join(shape, out, cin * dm, last)], weights

    return rule


def _separable(rank):
    def rule(cfg, inputs):
        shape = _one(inputs)
        if len(shape) != rank + 2:
            raise _Decline("rank")
        spatial, ch, last = _split(shape, cfg)
        dm = int(cfg.get("depth_multiplier", 1))
        filters = int(cfg["filters"])
        ks, out = _conv_spatial(spatial, cfg)
        cin = _need(ch)
        weights = [
            ((*ks, cin, dm), True),
            ((1,) * rank + (cin * dm, filters), True),
            *_bias(cfg, filters),
        ]
        return [_join(shape, out, filters, last)], weights

    return rule


def _dense(cfg, inputs):
    _no_lora(cfg)
    shape = _one(inputs)
    units = int(cfg["units"])
    return [(*shape[:-1], units)], [((_need(shape[-1]), units), True), *_bias(cfg, units)]


def _same(cfg, inputs):
    return [_one(inputs)], []


def _axes(cfg, rank, default=-1):
    axis = cfg.get("axis", default)
    axes = [axis] if isinstance(axis, int) else list(axis)
    return [a % rank for a in axes]


def _batchnorm(cfg, inputs):
    shape = _one(inputs)
    axes = _axes(cfg, len(shape))
    if len(axes) != 1:
        raise _Decline("BatchNormalization over several axes")
    c = _need(shape[axes[0]])
    weights = []
    if cfg.get("scale", True):
        weights.append(((c,), True))
    if cfg.get("center", True):
        weights.append(((c,), True))
    # Moving statistics are weights Keras never trains.
    weights += [((c,), False), ((c,), False)]
    return [shape], weights


def _layernorm(cfg, inputs):
    shape = _one(inputs)
    axes = _axes(cfg, len(shape))
    param = tuple(_need(shape[a]) for a in sorted(axes))
    if len(param) == 1:
        param = (param[0],)
    weights = []
    if cfg.get("rms_scaling"):
        raise _Decline("rms_scaling")
    if cfg.get("scale", True):
        weights.append((param, True))
    if cfg.get("center", True):
        weights.append((param, True))
    return [shape], weights


def _pool(rank):
    def rule(cfg, inputs):
        shape = _one(inputs)
        if len(shape) != rank + 2:
            raise _Decline("rank")
        spatial, ch, last = _split(shape, cfg)
        ps = _tuple(cfg.get("pool_size", 2), rank)
        strides = cfg.get("strides")
        ss = ps if strides is None else _tuple(strides, rank)
        padding = cfg.get("padding", "valid").lower()
        out = []
        for length, p, s in zip(spatial, ps, ss, strict=True):
            if length is None:
                out.append(None)
            elif padding == "valid":
                out.append((length - p) // s + 1)
            elif padding == "same":
                out.append((length - 1) // s + 1)
            else:
                raise _Decline(padding)
        if any(o is not None and o <= 0 for o in out):
            raise _Decline("non-positive size")
        return [_join(shape, out, ch, last)], []

    return rule


def _global_pool(rank):
    def rule(cfg, inputs):
        shape = _one(inputs)
        if len(shape) != rank + 2:
            raise _Decline("rank")
        spatial, ch, last = _split(shape, cfg)
        if cfg.get("keepdims", False):
            return [_join(shape, (1,) * rank, ch, last)], []
        return [(shape[0], ch)], []

    return rule


def _flatten(cfg, inputs):
    shape = _one(inputs)
    if not _channels_last(cfg) and len(shape) > 2:
        pass  # channels_first flatten reorders values, not the size
    rest = shape[1:]
    size = None if any(d is None for d in rest) else int(math.prod(rest))
    return [(shape[0], size)], []


def _reshape(cfg, inputs):
    shape = _one(inputs)
    target = list(cfg["target_shape"])
    if target.count(-1) > 1:
        raise _Decline("reshape")
    if -1 in target:
        known = shape[1:]
        if any(d is None for d in known):
            target[target.index(-1)] = None
        else:
            rest = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = int(math.prod(known)) // rest
    return [(shape[0], *target)], []


def _padding_pairs(value, n):
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if len(value) != n:
        if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
            return [tuple(value)]
        raise _Decline("padding")
    return [(v, v) if isinstance(v, int) else tuple(v) for v in value]


def _zero_padding(rank, sign):
    def rule(cfg, inputs):
        shape = _one(inputs)
        key = "padding" if sign > 0 else "cropping"
        pairs = _padding_pairs(cfg[key], rank)
        if rank == 1:
            spatial, ch, last = shape[1:-1], shape[-1], True
        else:
            spatial, ch, last = _split(shape, cfg)
        out = [
            None if d is None else d + sign * (a + b)
            for d, (a, b) in zip(spatial, pairs, strict=True)
        ]
        return [_join(shape, out, ch, last)], []

    return rule


def _upsampling(rank):
    def rule(cfg, inputs):
        shape = _one(inputs)
        if rank == 1:
            size = int(cfg.get("size", 2))
            return [(shape[0], None if shape[1] is None else shape[1] * size, shape[2])], []
        spatial, ch, last = _split(shape, cfg)
        sizes = _tuple(cfg.get("size", 2), rank)
        if cfg.get("interpolation", "nearest") not in ("nearest", "bilinear"):
            raise _Decline("interpolation")
        out = [None if d is None else d * s for d, s in zip(spatial, sizes, strict=True)]
        return [_join(shape, out, ch, last)], []

    return rule


def _merge(cfg, inputs):
    if len(inputs) < 2:
        raise _Decline("merge of one tensor")
    first = tuple(inputs[0])
    if any(tuple(s) != first for s in inputs[1:]):
        raise _Decline("merge of different shapes")
    return [first], []


def _concatenate(cfg, inputs):
    if len(inputs) < 2:
        raise _Decline("concatenate of one tensor")
    rank = len(inputs[0])
    if any(len(s) != rank for s in inputs):
        raise _Decline("rank")
    axis = int(cfg.get("axis", -1)) % rank
    out = list(inputs[0])
    for i in range(rank):
        if i == axis:
            dims = [s[i] for s in inputs]
            out[i] = None if any(d is None for d in dims) else sum(dims)
        elif any(s[i] != out[i] for s in inputs):
            raise _Decline("concatenate of different shapes")
    return [tuple(out)], []


def _embedding(cfg, inputs):
    _no_lora(cfg)
    shape = _one(inputs)
    dim = int(cfg["output_dim"])
    return [(*shape, dim)], [((int(cfg["input_dim"]), dim), True)]


def _permute(cfg, inputs):
    shape = _one(inputs)
    dims = list(cfg["dims"])
    return [(shape[0], *(shape[d] for d in dims))], []


def _repeat(cfg, inputs):
    shape = _one(inputs)
    if len(shape) != 2:
        raise _Decline("rank")
    return [(shape[0], int(cfg["n"]), shape[1])], []


def _activation(cfg, inputs):
    act = cfg.get("activation")
    if not isinstance(act, str):
        raise _Decline("custom activation")
    return [_one(inputs)], []


_RULES = {name: _same for name in SHAPE_PRESERVING}
_RULES.update(
    {
        "InputLayer": lambda cfg, inputs: ([_input_layer_shape(cfg)], []),
        "Activation": _activation,
        "Dense": _dense,
        "Conv1D": _conv(1),
        "Conv2D": _conv(2),
        "Conv3D": _conv(3),
        "DepthwiseConv1D": _depthwise(1),
        "DepthwiseConv2D": _depthwise(2),
        "SeparableConv1D": _separable(1),
        "SeparableConv2D": _separable(2),
        "BatchNormalization": _batchnorm,
        "LayerNormalization": _layernorm,
        "MaxPooling1D": _pool(1),
        "MaxPooling2D": _pool(2),
        "MaxPooling3D": _pool(3),
        "AveragePooling1D": _pool(1),
        "AveragePooling2D": _pool(2),
        "AveragePooling3D": _pool(3),
        "GlobalAveragePooling1D": _global_pool(1),
        "GlobalAveragePooling2D": _global_pool(2),
        "GlobalAveragePooling3D": _global_pool(3),
        "GlobalMaxPooling1D": _global_pool(1),
        "GlobalMaxPooling2D": _global_pool(2),
        "GlobalMaxPooling3D": _global_pool(3),
        "Flatten": _flatten,
        "Reshape": _reshape,
        "Permute": _permute,
        "RepeatVector": _repeat,
        "ZeroPadding1D": _zero_padding(1, 1),
        "ZeroPadding2D": _zero_padding(2, 1),
        "ZeroPadding3D": _zero_padding(3, 1),
        "Cropping1D": _zero_padding(1, -1),
        "Cropping2D": _zero_padding(2, -1),
        "Cropping3D": _zero_padding(3, -1),
        "UpSampling1D": _upsampling(1),
        "UpSampling2D": _upsampling(2),
        "UpSampling3D": _upsampling(3),
        "Add": _merge,
        "Subtract": _merge,
        "Multiply": _merge,
        "Average": _merge,
        "Maximum": _merge,
        "Minimum": _merge,
        "Concatenate": _concatenate,
        "Embedding": _embedding,
    }
)
