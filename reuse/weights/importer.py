"""Fill a Keras model with weights made elsewhere, and report where every tensor went.

Sources: another Keras model (file or object), Keras `.weights.h5`, `.npz`, `.safetensors`,
PyTorch state dicts (or an `nn.Module`), TensorFlow checkpoints (TF1 name-based, TF2
object-based). Target: a Keras model, a `.keras`/`.h5`/`.json` architecture, or a layer spec
(`input:784,dense:300:relu:name=hidden1,dense:10:softmax`).

Matching, per source tensor:

1. `mapping` rules rename it (`src=dst`, regex full match, groups allowed; tried on the whole
   name, then on its layer part). An empty `dst` drops the tensor.
2. The name splits into a layer part and a parameter (`fc1.weight`, `hidden1/kernel`); the
   layer part, or its trailing components (`model.fc1` -> `fc1`), names a target layer.
3. The parameter's vocabulary tells the layout: PyTorch words (`weight`, `running_mean`) are
   converted (Linear `(out, in)` -> `(in, out)`, Conv `(out, in, k...)` -> `(k..., in, out)`,
   depthwise, BatchNorm, Embedding); Keras / TensorFlow words (`kernel`, `gamma`) are copied.
   Keras weight files and Keras models match by layer name and weight position.

Every source tensor ends assigned, unused, shape-mismatched, not selected (by `layers`) or
known-unused (optimizer slots, step counters, `num_batches_tracked`); every target weight is
filled or left at its initial value.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path

import numpy as np

from reuse.core import report as notes
from reuse.core.errors import ModelLoadError, SpecError, UsageError, WeightImportError

RECURRENT_CLASSES = {
    "LSTM",
    "GRU",
    "SimpleRNN",
    "RNN",
    "Bidirectional",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "LSTMCell",
    "GRUCell",
    "SimpleRNNCell",
    "StackedRNNCells",
}
CONV_CLASSES = {
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
}
DEPTHWISE_CLASSES = {"DepthwiseConv1D", "DepthwiseConv2D"}
NORM_CLASSES = {"BatchNormalization", "LayerNormalization", "GroupNormalization"}
TORCH_BN_EPS = 1e-5

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

STATUS_ASSIGNED = "assigned"
STATUS_UNUSED = "unused"
STATUS_MISMATCH = "shape mismatch"
STATUS_NOT_SELECTED = "not selected"
STATUS_KNOWN_UNUSED = "known, unused"
STATUS_OPTIMIZER = "optimizer state"


@dataclass
class SourceTensor:
    name: str
    value: np.ndarray
    kind: str = "weight"
    layer: str | None = None  # Keras sources: the layer path
    index: int | None = None  # Keras sources: position among the layer's weights


@dataclass
class ImportReport:
    """Where every source tensor went and which target weights were filled.

    `tensors`: one dict per source tensor (name, shape, status, target, target_shape,
    conversion, note). `targets`: one dict per target weight (weight, shape, status, source).
    `check`: the output comparison, when one was asked for. `model`: the filled model.
    """

    source: str
    tensors: list[dict] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    check: dict | None = None
    model: object = None

    def counts(self) -> dict:
        c: dict[str, int] = {}
        for row in self.tensors:
            c[row["status"]] = c.get(row["status"], 0) + 1
        filled = sum(1 for t in self.targets if t["status"] == "filled")
        return {
            "assigned": c.get(STATUS_ASSIGNED, 0),
            "unused": c.get(STATUS_UNUSED, 0),
            "mismatched": c.get(STATUS_MISMATCH, 0),
            "not_selected": c.get(STATUS_NOT_SELECTED, 0),
            "known_unused": c.get(STATUS_KNOWN_UNUSED, 0) + c.get(STATUS_OPTIMIZER, 0),
            "targets_filled": filled,
            "targets_left_at_init": len(self.targets) - filled,
        }

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "counts": self.counts(),
            "tensors": self.tensors,
            "targets": self.targets,
            "warnings": self.warnings,
            "check": self.check,
        }


# --- the public function -------------------------------------------------------------------


def import_weights(
    source,
    into,
    *,
    layers: str | None = None,
    mapping=None,
    strict: bool = False,
    skip_mismatched: bool = False,
    check_inputs=None,
    check_outputs=None,
    tolerance: float = 1e-4,
    unsafe: bool = False,
) -> ImportReport:
    """Fill a Keras model with the weights of `source`, converting layouts, and report.

    Example:
        >>> rep = import_weights("mlp.pt", "input:784,dense:300:relu:name=fc1,dense:10:name=fc2")
        >>> rep.counts()["assigned"], rep.model
        (4, <Functional ...>)

    Args:
        source: a weight file or TensorFlow checkpoint prefix, a Keras model file, a Keras
            model, a PyTorch `nn.Module`, or a dict {name: array}.
        into: the target: a Keras model (filled in place), a `.keras`/`.h5`/`.json` path, or
            a layer spec that starts with `input:` (see `build_from_spec`).
        layers: regex (full match) on target layer names: only those layers are restored.
        mapping: renaming rules: "src=dst" strings, (src, dst) pairs, a dict, or a JSON/TOML
            file path (see `parse_mapping`).
        strict: fail unless every source weight is assigned and every (selected) target
            weight is filled.
        skip_mismatched: leave shape-mismatched weights at their initial values instead of
            failing.
        check_inputs: inputs (array or .npy path, channels-last) to compare outputs on.
        check_outputs: the expected outputs (array or .npy path). When None and `source` is
            an `nn.Module`, the module computes them.
        tolerance: the largest max-abs difference the check accepts.
        unsafe: allow Lambda layers in Keras model files.

    Returns:
        An ImportReport; `report.model` is the filled Keras model.

    Raises:
        WeightImportError: nothing matches, an ambiguous match, shape mismatches (unless
            `skip_mismatched`), an unconverted layer (recurrent), a failed `strict` or check.
            The error's `report` attribute holds the report so far.
        ModelLoadError: the source or target cannot be read.
    """
    model = _resolve_target(into, unsafe=unsafe)
    selector = _compile_layers(layers)
    rules = parse_mapping(mapping)
    src = _read_source(source, unsafe=unsafe)
    rep = ImportReport(source=src.label)
    plan = _match(src, model, rules, selector, rep)
    _finish(src, model, plan, selector, rep, strict=strict, skip_mismatched=skip_mismatched)
    rep.model = model
    if check_inputs is not None:
        rep.check = run_check(
            model, check_inputs, check_outputs, torch_module=src.module, tolerance=tolerance
        )
        if not rep.check["passed"]:
            _raise(
                rep,
                f"the imported model's outputs differ from the reference by {rep.check['max_abs_diff']:.3g} "
                f"(tolerance {tolerance:g})",
                "check the layer order, activations, epsilons and the flatten order (see the report), "
                "or raise --tolerance",
            )
    elif check_outputs is not None:
        raise UsageError(
            "`check_outputs` needs `check_inputs`", "pass the inputs with --check X.npy"
        )
    return rep


def _raise(rep: ImportReport, message: str, hint: str):
    err = WeightImportError(message, hint)
    err.report = rep
    raise err


# --- sources -------------------------------------------------------------------------------


@dataclass
class _Source:
    label: str
    tensors: list[SourceTensor]
    keras_native: bool  # same layouts as Keras: match by layer and position
    module: object = None  # a PyTorch module, when one was given
    torch_eps: dict = field(default_factory=dict)  # module name -> BatchNorm eps


def _is_keras_model(obj) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "get_weights") and hasattr(obj, "save")


def _read_source(source, *, unsafe: bool) -> _Source:
    if _is_keras_model(source):
        return _keras_model_source(source, getattr(source, "name", "model"))
    if isinstance(source, dict):
        tensors = [SourceTensor(k, np.asarray(v)) for k, v in source.items()]
        return _Source("dict", tensors, keras_native=False)
    if type(source).__module__.startswith("torch") or hasattr(source, "state_dict"):
        return _torch_module_source(source)
    p = Path(source)
    if _is_keras_model_file(p):
        from reuse.formats import model_io

        return _keras_model_source(model_io.load_model(p, unsafe=unsafe), str(p))
    from reuse.formats import weight_files

    wf = weight_files.read_weight_file(p)
    tensors = [SourceTensor(t.name, t.value, t.kind, t.layer, t.index) for t in wf.tensors]
    native = wf.format in ("keras_h5", "keras_h5_legacy")
    return _Source(str(p), tensors, keras_native=native)


def _is_keras_model_file(p: Path) -> bool:
    """Whether `p` holds a whole Keras model (read as a model, not as a weight file)."""
    from reuse.formats.paths import MODEL_KINDS, classify

    return classify(p) in MODEL_KINDS


def _keras_model_source(model, label: str) -> _Source:
    from reuse.surgery.layer_tree import leaves

    tensors = []
    for entry in leaves(model):
        for i, w in enumerate(entry.layer.weights):
            short = w.name.rsplit("/", 1)[-1].split(":", 1)[0]
            tensors.append(
                SourceTensor(
                    f"{entry.path}/{short}", np.asarray(w.numpy()), layer=entry.path, index=i
                )
            )
    return _Source(label, tensors, keras_native=True)


def _torch_module_source(module) -> _Source:
    tensors = [SourceTensor(k, v.detach().cpu().numpy()) for k, v in module.state_dict().items()]
    eps = {
        name: float(m.eps)
        for name, m in module.named_modules()
        if hasattr(m, "running_mean") and hasattr(m, "eps")
    }
    return _Source(type(module).__name__, tensors, keras_native=False, module=module, torch_eps=eps)


# --- targets -------------------------------------------------------------------------------


def _resolve_target(into, *, unsafe: bool):
    if _is_keras_model(into):
        return into
    if isinstance(into, str) and into.strip().lower().startswith("input:"):
        return build_from_spec(into)
    p = Path(into)
    if p.suffix.lower() == ".json":
        import keras

        try:
            return keras.models.model_from_json(p.read_text())
        except FileNotFoundError:
            raise ModelLoadError(f"{p}: no such file", "check the --into path") from None
        except Exception as err:
            raise ModelLoadError(
                f"cannot build a model from {p} ({str(err).splitlines()[0][:150]})",
                "pass a JSON file written by model.to_json()",
            ) from err
    from reuse.formats import model_io

    return model_io.load_model(p, unsafe=unsafe)


def build_from_spec(spec: str):
    """Build a Keras model from a layer spec that starts with an input shape.

    Example:
        >>> model = build_from_spec("input:784,dense:300:relu:name=hidden1,dense:10:softmax")

    Tokens (comma-separated; `name=...` works in every token):
        input:784 | input:28x28x1, dense:UNITS[:ACT], conv1d/conv2d:FILTERS:KERNEL[:ACT]
        [:stride=S][:padding=same|valid], depthwise2d:KERNEL[:mult=M], batchnorm[:eps=E],
        maxpool2d[:N], avgpool2d[:N], gap, flatten, dropout:RATE, embedding:VOCAB:DIM,
        activation:NAME.
        Unnamed layers are called `dense_1`, `dense_2`, `conv2d_1`, ...

    Raises:
        SpecError: a malformed spec.
    """
    import keras

    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens or not tokens[0].lower().startswith("input:"):
        raise SpecError(
            f"an --arch spec starts with the input shape. Received: {spec!r}",
            "e.g. --arch 'input:784,dense:300:relu,dense:10:softmax'",
        )
    shape_text = tokens[0].split(":", 1)[1]
    try:
        shape = tuple(int(d) for d in re.split(r"[x*]", shape_text) if d)
    except ValueError:
        raise SpecError(
            f"bad input shape in --arch. Received: {tokens[0]!r}",
            "write it as input:784 or input:28x28x1",
        ) from None
    if not shape or any(d <= 0 for d in shape):
        raise SpecError(
            f"bad input shape in --arch. Received: {tokens[0]!r}",
            "write it as input:784 or input:28x28x1",
        )
    inputs = keras.Input(shape, name="input")
    x = inputs
    # The one place that turns spec tokens into layers; `reuse.surgery.heads.build_layers` can replace it.
    for layer in _spec_layers(tokens[1:]):
        x = layer(x)
    return keras.Model(inputs, x, name="imported")


_SPEC_KINDS = (
    "dense",
    "conv1d",
    "conv2d",
    "depthwise2d",
    "batchnorm",
    "maxpool2d",
    "avgpool2d",
    "gap",
    "flatten",
    "dropout",
    "embedding",
    "activation",
)


def _spec_layers(tokens: list[str]) -> list:
    """Keras layers for spec tokens (after the input token). Isolated so it can be swapped."""
    import keras

    from reuse.core.spec_grammar import closest

    counters: dict[str, int] = {}
    built = []
    for token in tokens:
        parts = token.split(":")
        kind = parts[0].lower()
        opts = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        args = [p for p in parts[1:] if "=" not in p]
        if kind not in _SPEC_KINDS:
            near = closest(kind, list(_SPEC_KINDS))
            raise SpecError(
                f"unknown layer kind in --arch. Received: {token!r}",
                f"did you mean: {', '.join(near)}"
                if near
                else f"use one of: {', '.join(_SPEC_KINDS)}",
            )
        counters[kind] = counters.get(kind, 0) + 1
        name = opts.pop("name", f"{kind}_{counters[kind]}")
        try:
            built.append(_spec_layer(keras, kind, args, opts, name))
        except (ValueError, IndexError) as err:
            raise SpecError(
                f"bad --arch token {token!r} ({err})",
                "e.g. dense:300:relu, conv2d:32:3:relu:padding=same, batchnorm:eps=1e-5",
            ) from None
    return built


def _spec_layer(keras, kind: str, args: list[str], opts: dict, name: str):
    act = None
    if kind == "dense":
        return keras.layers.Dense(
            int(args[0]), activation=args[1] if len(args) > 1 else None, name=name
        )
    if kind in ("conv1d", "conv2d"):
        act = args[2] if len(args) > 2 else None
        cls = keras.layers.Conv1D if kind == "conv1d" else keras.layers.Conv2D
        return cls(
            int(args[0]),
            int(args[1]),
            strides=int(opts.get("stride", 1)),
            padding=opts.get("padding", "valid"),
            activation=act,
            name=name,
        )
    if kind == "depthwise2d":
        return keras.layers.DepthwiseConv2D(
            int(args[0]),
            depth_multiplier=int(opts.get("mult", 1)),
            padding=opts.get("padding", "valid"),
            activation=args[1] if len(args) > 1 else None,
            name=name,
        )
    if kind == "batchnorm":
        return keras.layers.BatchNormalization(
            epsilon=float(opts.get("eps", 1e-3)),
            momentum=float(opts.get("momentum", 0.99)),
            name=name,
        )
    if kind == "maxpool2d":
        return keras.layers.MaxPooling2D(int(args[0]) if args else 2, name=name)
    if kind == "avgpool2d":
        return keras.layers.AveragePooling2D(int(args[0]) if args else 2, name=name)
    if kind == "gap":
        return keras.layers.GlobalAveragePooling2D(name=name)
    if kind == "flatten":
        return keras.layers.Flatten(name=name)
    if kind == "activation":
        return keras.layers.Activation(args[0], name=name)
    if kind == "dropout":
        return keras.layers.Dropout(float(args[0]), name=name)
    return keras.layers.Embedding(int(args[0]), int(args[1]), name=name)


# --- mapping -------------------------------------------------------------------------------


def parse_mapping(mapping) -> list[tuple[re.Pattern, str]]:
    """Renaming rules from `src=dst` strings, pairs, a dict, or a JSON / TOML file.

    Example:
        >>> parse_mapping(["fc1=hidden1", r"features\\.(\\d+)=conv\\1"])

    A file holds {"src": "dst", ...} (JSON), or `src = "dst"` lines, optionally in a `[map]`
    table (TOML). Rules are tried in order on the whole tensor name, then on its layer
    part; the first full match wins.

    Raises:
        UsageError: a rule without `=`, a bad regex, or an unreadable file.
    """
    if mapping is None:
        return []
    if isinstance(mapping, (str, os.PathLike)):
        mapping = [mapping]
    if isinstance(mapping, dict):
        pairs = list(mapping.items())
    else:
        pairs = []
        for item in mapping:
            if isinstance(item, (tuple, list)) and len(item) == 2:
                pairs.append((str(item[0]), str(item[1])))
                continue
            text = str(item)
            if "=" not in text and Path(text).suffix.lower() in (".json", ".toml"):
                pairs.extend(_mapping_file(Path(text)))
            elif "=" in text:
                src, dst = text.split("=", 1)
                pairs.append((src.strip(), dst.strip()))
            else:
                raise UsageError(
                    f"--map rules are written src=dst. Received: --map {text!r}",
                    "e.g. --map 'fc1=hidden1', --map 'features\\.(\\d+)=conv\\1', or --map rules.json",
                )
    rules = []
    for src, dst in pairs:
        try:
            rules.append((re.compile(src), dst))
        except re.error as err:
            raise UsageError(
                f"--map source {src!r} is not a valid regex ({err})", "escape dots as \\."
            ) from None
    return rules


def _mapping_file(p: Path) -> list[tuple[str, str]]:
    try:
        text = p.read_text()
    except OSError:
        raise UsageError(f"--map file {p} cannot be read", "check the path") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
            data = data.get("map", data)
    except ValueError as err:
        raise UsageError(
            f"--map file {p} is not valid {p.suffix[1:].upper()} ({err})", "fix the file"
        ) from None
    if isinstance(data, list):
        return [(str(a), str(b)) for a, b in data]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(
            f'--map file {p} must hold {{"src": "dst", ...}}', "write one string per source name"
        )
    return list(data.items())


def _apply_mapping(name: str, key: str, param: str, rules) -> tuple[str | None, str | None, bool]:
    """The (key, param) after renaming; key None means dropped. The bool says a rule applied.

    A rule that matches the whole tensor name wins over one that matches its layer part.
    """
    for pattern, dst in rules:
        m = pattern.fullmatch(name)
        if m:
            new = m.expand(dst)
            if not new:
                return None, None, True
            k, p = _split(new)
            return (k, p or param, True) if p else (new, param, True)
    for pattern, dst in rules:
        m = pattern.fullmatch(key)
        if m:
            new = m.expand(dst)
            return (new or None), param, True
    return key, param, False


def _split(name: str) -> tuple[str, str]:
    cut = max(name.rfind("/"), name.rfind("."))
    if cut < 0:
        return name, ""
    return name[:cut], name[cut + 1 :]


# --- matching ------------------------------------------------------------------------------


def _compile_layers(layers: str | None):
    if layers is None:
        return None
    try:
        return re.compile(layers)
    except re.error as err:
        raise UsageError(
            f"--layers is not a valid regex ({err}). Received: --layers {layers!r}",
            "e.g. --layers 'hidden[123]'",
        ) from None


def _selected(selector, path: str) -> bool:
    return selector is None or bool(
        selector.fullmatch(path) or selector.fullmatch(path.rsplit("/", 1)[-1])
    )


@dataclass
class _Assignment:
    row: dict
    weight: object
    value: np.ndarray
    layer_path: str
    layer: object


class _Targets:
    """Target layers by full path, bare name and weighted position."""

    def __init__(self, model):
        from reuse.surgery.layer_tree import leaves

        self.entries = leaves(model)
        self.by_path = {e.path: e for e in self.entries}
        self.by_bare: dict[str, list] = {}
        for e in self.entries:
            self.by_bare.setdefault(e.path.rsplit("/", 1)[-1], []).append(e)
        self.weighted = [e for e in self.entries if e.layer.weights]

    def find(self, key: str):
        """The target entry that `key` names, trying trailing components (`model.fc1` -> `fc1`)."""
        parts = [p for p in re.split(r"[./]", key) if p]
        for i in range(len(parts)):
            tail = parts[i:]
            if len(tail) == 1:
                m = re.fullmatch(r"layer_with_weights-(\d+)", tail[0])
                if m and int(m.group(1)) < len(self.weighted):
                    return self.weighted[int(m.group(1))]
            for candidate in ("/".join(tail), "_".join(tail), ".".join(tail)):
                if candidate in self.by_path:
                    return self.by_path[candidate]
                bare = self.by_bare.get(candidate, [])
                if len(bare) == 1:
                    return bare[0]
                if len(bare) > 1:
                    raise WeightImportError(
                        f"source layer '{key}' matches several target layers: {', '.join(e.path for e in bare)}",
                        "name the full outer/inner path with --map",
                    )
        return None

    def names(self) -> list[str]:
        return [e.path for e in self.weighted]


def _match(src: _Source, model, rules, selector, rep: ImportReport) -> list[_Assignment]:
    targets = _Targets(model)
    plan: list[_Assignment] = []
    for t in src.tensors:
        row = {
            "name": t.name,
            "shape": list(t.value.shape) if t.value is not None else None,
            "status": STATUS_UNUSED,
            "target": None,
            "target_shape": None,
            "conversion": None,
            "note": None,
        }
        rep.tensors.append(row)
        if t.kind != "weight":
            row["status"] = STATUS_OPTIMIZER if t.kind == "optimizer" else STATUS_KNOWN_UNUSED
            continue
        if t.layer is not None and t.index is not None:
            key, param = t.layer, str(t.index)
            name_for_rules = f"{t.layer}/{t.index}"
        else:
            key, param = _split(t.name)
            name_for_rules = t.name
        key, param, mapped = _apply_mapping(name_for_rules, key, param, rules)
        if key is None:
            row["status"], row["note"] = STATUS_KNOWN_UNUSED, "dropped by --map"
            continue
        if param == "num_batches_tracked":
            row["status"], row["note"] = (
                STATUS_KNOWN_UNUSED,
                "BatchNorm step counter: Keras has no such weight",
            )
            continue
        entry = targets.find(key)
        if entry is None:
            if selector is not None and not _selected(selector, key.replace(".", "/")):
                row["status"] = STATUS_NOT_SELECTED
            else:
                row["note"] = f"no target layer named '{key}'"
            continue
        if not _selected(selector, entry.path):
            row["status"] = STATUS_NOT_SELECTED
            row["target"] = entry.path
            continue
        assignment = _plan_tensor(t, src, entry, param, row, model)
        if assignment is not None:
            plan.append(assignment)
    return plan


def _plan_tensor(
    t: SourceTensor, src: _Source, entry, param: str, row: dict, model
) -> _Assignment | None:
    layer = entry.layer
    cls = type(layer).__name__
    if cls in RECURRENT_CLASSES and not src.keras_native:
        raise WeightImportError(
            f"layer '{entry.path}' ({cls}): reuse does not convert recurrent weight layouts yet "
            f"(source tensor '{t.name}'), and will not fill it with wrong values",
            "leave it out with --layers, drop its tensors with --map 'NAME=', or set its weights yourself",
        )
    weights = list(layer.weights)
    value = t.value
    conversion = None
    if param.isdigit():
        i = int(param)
        if i >= len(weights):
            row["note"] = f"layer '{entry.path}' has {len(weights)} weights, no weight #{i}"
            return None
        weight = weights[i]
    else:
        wanted, value, conversion = _convert(param, value, layer, cls, entry.path, row, model)
        if wanted is None:
            return None
        weight = next((w for w in weights if _short(w) == wanted), None)
        if weight is None:
            row["note"] = f"layer '{entry.path}' ({cls}) has no weight '{wanted}'"
            return None
    target_shape = tuple(int(d) for d in weight.shape)
    row["target"] = f"{entry.path}/{_short(weight)}"
    row["target_shape"] = list(target_shape)
    row["conversion"] = conversion
    if tuple(value.shape) != target_shape:
        row["status"] = STATUS_MISMATCH
        row["note"] = _mismatch_hint(t.value, value, target_shape, conversion)
        return None
    return _Assignment(row, weight, value, entry.path, layer)


def _short(weight) -> str:
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _convert(param: str, value: np.ndarray, layer, cls: str, path: str, row: dict, model):
    """(target weight name, converted value, description) for a named parameter."""
    if param in KERAS_PARAMS:
        wanted = KERAS_PARAMS[param]
        if cls in NORM_CLASSES and wanted == "kernel":
            wanted = "gamma"
        if cls in NORM_CLASSES and wanted == "bias":
            wanted = "beta"
        if cls in DEPTHWISE_CLASSES and wanted in ("kernel", "depthwise_kernel"):
            names = [_short(w) for w in layer.weights]
            wanted = "depthwise_kernel" if "depthwise_kernel" in names else "kernel"
        if cls == "Embedding" and wanted == "kernel":
            wanted = "embeddings"
        return wanted, value, None
    if param not in TORCH_PARAMS:
        weights = [_short(w) for w in layer.weights]
        if param in weights:
            return param, value, None
        row["note"] = (
            f"parameter '{param}' is not a weight of '{path}' ({cls}: {', '.join(weights)})"
        )
        return None, value, None
    # PyTorch layout
    if param == "running_mean":
        return "moving_mean", value, "running_mean → moving_mean"
    if param == "running_var":
        return "moving_variance", value, "running_var → moving_variance"
    if param == "bias":
        return ("beta", value, "bias → beta") if cls in NORM_CLASSES else ("bias", value, None)
    # param == "weight"
    if cls in NORM_CLASSES:
        return "gamma", value, "weight → gamma"
    if cls == "Embedding":
        return "embeddings", value, None
    if cls == "Dense":
        if value.ndim != 2:
            return "kernel", value, None
        flat = _flatten_input_shape(layer)
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
    if cls in CONV_CLASSES:
        if value.ndim < 3:
            return "kernel", value, None
        axes = (*range(2, value.ndim), 1, 0)
        return "kernel", value.transpose(axes).copy(), f"transpose {axes}"
    if cls in DEPTHWISE_CLASSES:
        # Keras 3 calls the depthwise weight `kernel`; older versions `depthwise_kernel`.
        kernel = next(
            (w for w in layer.weights if _short(w) in ("kernel", "depthwise_kernel")), None
        )
        wanted = _short(kernel) if kernel is not None else "kernel"
        if kernel is None or value.ndim < 3 or value.shape[1] != 1:
            return wanted, value, None
        in_ch = int(kernel.shape[-2])
        mult = value.shape[0] // max(in_ch, 1)
        v = value.reshape(in_ch, mult, *value.shape[2:])  # (in, mult, k...)
        v = v.transpose(*range(2, v.ndim), 0, 1)
        return wanted, v.copy(), "depthwise (in·mult, 1, k...) → (k..., in, mult)"
    raise WeightImportError(
        f"layer '{path}' ({cls}): reuse does not know how PyTorch lays out this layer's 'weight' "
        f"(source tensor '{row['name']}'), and will not fill it with wrong values",
        "leave it out with --layers, or drop the tensor with --map 'NAME='",
    )


def _flatten_input_shape(layer):
    """The per-sample input shape of the Flatten layer feeding `layer`, or None."""
    try:
        history = layer.input._keras_history
        op = history[0] if isinstance(history, tuple) else history.operation
    except Exception:  # noqa: BLE001 - a layer used several times, or not in a graph
        return None
    if type(op).__name__ != "Flatten":
        return None
    try:
        shape = op.input.shape
    except Exception:  # noqa: BLE001
        return None
    dims = tuple(shape[1:])
    if len(dims) < 2 or any(d is None for d in dims):
        return None
    return tuple(int(d) for d in dims)


def _mismatch_hint(
    raw: np.ndarray, converted: np.ndarray, target: tuple, conversion: str | None
) -> str:
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


def _finish(
    src: _Source,
    model,
    plan: list[_Assignment],
    selector,
    rep: ImportReport,
    *,
    strict: bool,
    skip_mismatched: bool,
) -> None:
    by_weight: dict[int, _Assignment] = {}
    for a in plan:
        other = by_weight.get(id(a.weight))
        if other is not None:
            _raise(
                rep,
                f"ambiguous match: '{other.row['name']}' and '{a.row['name']}' both map to {a.row['target']}",
                "rename one with --map, drop one with --map 'NAME=', or restrict with --layers",
            )
        by_weight[id(a.weight)] = a
    mismatched = [r for r in rep.tensors if r["status"] == STATUS_MISMATCH]
    if not plan and not mismatched:
        names = [t.name for t in src.tensors if t.kind == "weight"][:4]
        targets = _Targets(model).names()[:4]
        _raise(
            rep,
            f"no tensor of {src.label} matches a layer of the target"
            + (
                f" (source names: {', '.join(names)}; target layers: {', '.join(targets)})"
                if names
                else ""
            ),
            "rename with --map 'SRC=DST' (regex allowed), or check --layers; `reuse inspect SOURCE` lists the names",
        )
    if mismatched and not skip_mismatched:
        first = "; ".join(f"{r['name']} → {r['target']}: {r['note']}" for r in mismatched[:3])
        more = f" (and {len(mismatched) - 3} more)" if len(mismatched) > 3 else ""
        _fill_targets(model, {}, selector, rep)
        _raise(
            rep,
            f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''}: {first}{more}",
            "fix the architecture, leave those layers out with --layers, or pass --skip-mismatched "
            "to keep their initial values",
        )
    for a in plan:
        a.row["status"] = STATUS_ASSIGNED
    _bn_epsilon_warnings(src, plan, rep)
    _fill_targets(model, by_weight, selector, rep)
    if strict:
        unused = [r["name"] for r in rep.tensors if r["status"] in (STATUS_UNUSED, STATUS_MISMATCH)]
        left = [
            t["weight"] for t in rep.targets if t["status"] != "filled" and t.get("selected", True)
        ]
        if unused or left:
            parts = []
            if unused:
                parts.append(
                    f"{len(unused)} source tensor(s) not assigned ({', '.join(unused[:4])}{', ...' if len(unused) > 4 else ''})"
                )
            if left:
                parts.append(
                    f"{len(left)} target weight(s) left at init ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})"
                )
            _raise(rep, "--strict: " + "; ".join(parts), "map them with --map, or drop --strict")
    for a in plan:
        a.weight.assign(a.value.astype(a.weight.dtype, copy=False))
    unused = [r["name"] for r in rep.tensors if r["status"] == STATUS_UNUSED]
    if unused:
        rep.warnings.append(
            f"{len(unused)} source tensor(s) unused: {', '.join(unused[:6])}{' ...' if len(unused) > 6 else ''}"
        )
    for w in rep.warnings:
        notes.warn(w)


def _fill_targets(model, by_weight: dict, selector, rep: ImportReport) -> None:
    rep.targets.clear()
    for entry in _Targets(model).entries:
        for w in entry.layer.weights:
            a = by_weight.get(id(w))
            rep.targets.append(
                {
                    "weight": f"{entry.path}/{_short(w)}",
                    "shape": [int(d) for d in w.shape],
                    "status": "filled" if a else "left at init",
                    "source": a.row["name"] if a else None,
                    "selected": _selected(selector, entry.path),
                }
            )


def _bn_epsilon_warnings(src: _Source, plan: list[_Assignment], rep: ImportReport) -> None:
    """Warn when a BatchNorm filled from PyTorch uses another epsilon than the source."""
    if src.keras_native:
        return
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
        torch_eps = src.torch_eps.get(_split(a.row["name"])[0])
        known = torch_eps is not None
        torch_eps = torch_eps if known else TORCH_BN_EPS
        if abs(float(layer.epsilon) - torch_eps) > 1e-12:
            origin = (
                f"the PyTorch module uses eps={torch_eps:g}"
                if known
                else f"PyTorch's default BatchNorm eps is {torch_eps:g}"
            )
            rep.warnings.append(
                f"{a.layer_path}: Keras epsilon={float(layer.epsilon):g} but {origin}; outputs will differ "
                f"slightly — build the layer with epsilon={torch_eps:g}"
            )


# --- checking ------------------------------------------------------------------------------


def run_check(model, inputs, reference=None, *, torch_module=None, tolerance: float = 1e-4) -> dict:
    """Compare the model's outputs on `inputs` with `reference` (or a PyTorch module's).

    Example:
        >>> run_check(model, "x.npy", "y.npy")["max_abs_diff"]

    Args:
        model: the Keras model.
        inputs: array or `.npy` path, channels-last.
        reference: expected outputs (array or `.npy`); computed by `torch_module` when None.
        torch_module: a PyTorch module run in eval mode on channels-first inputs.
        tolerance: the largest accepted max-abs difference.

    Returns:
        {"rows", "max_abs_diff", "tolerance", "passed"}.

    Raises:
        DataError / UsageError: unreadable arrays, shapes that do not fit, no reference.
    """
    from reuse.core.errors import DataError

    x = _load_array(inputs, "--check")
    if reference is None:
        if torch_module is None:
            raise UsageError(
                "--check needs --reference OUTPUTS.npy",
                "save the source model's outputs on the same inputs",
            )
        reference = torch_reference(torch_module, x)
    y = _load_array(reference, "--reference")
    out = model(x.astype("float32"), training=False)
    out = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    if out.shape != y.shape:
        raise DataError(
            f"--reference has shape {y.shape} but the model's outputs have shape {out.shape}",
            "pass the source model's outputs on the --check inputs",
        )
    diff = float(np.max(np.abs(out.astype(np.float64) - y.astype(np.float64)))) if out.size else 0.0
    return {
        "rows": int(len(x)),
        "max_abs_diff": diff,
        "tolerance": float(tolerance),
        "passed": diff <= tolerance,
    }


def torch_reference(module, x: np.ndarray) -> np.ndarray:
    """A PyTorch module's outputs (eval mode) on channels-last inputs (moved to channels-first)."""
    import torch

    xt = x if x.ndim <= 2 else np.moveaxis(x, -1, 1)
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(xt, dtype=np.float32))).numpy()


def _load_array(value, option: str) -> np.ndarray:
    from reuse.core.errors import DataError

    if isinstance(value, (str, os.PathLike)):
        try:
            return np.load(value, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{option} {value}: no such file", "check the path") from None
        except (ValueError, OSError) as err:
            raise DataError(
                f"{option} {value} is not a readable .npy array ({err})", "save it with np.save"
            ) from None
    return np.asarray(value)
