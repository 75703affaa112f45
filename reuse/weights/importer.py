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

This module reads the source, resolves the target and matches tensors to weights; the rules
live in `reuse.weights.mapping`, the layout conversions in `reuse.weights.layouts`, the output
check in `reuse.weights.verify`, and the layer-spec grammar of `--arch` in
`reuse.surgery.layer_spec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core import report as notes
from reuse.core.errors import ModelLoadError, UsageError, WeightImportError
from reuse.weights.layouts import (
    FLATTEN_ORDERS,
    bn_epsilon_warnings,
    convert,
    expand_torch_tensors,
    mismatch_hint,
    refuse_recurrent,
    short_name,
)
from reuse.weights.mapping import apply_mapping, compile_layers, parse_mapping, selected, split_name
from reuse.weights.verify import run_check

STATUS_ASSIGNED = "assigned"
STATUS_UNUSED = "unused"
STATUS_MISMATCH = "shape mismatch"
STATUS_NOT_SELECTED = "not selected"
STATUS_KNOWN_UNUSED = "known, unused"
STATUS_OPTIMIZER = "optimizer state"


@dataclass
class SourceTensor:
    """One tensor of the source: its full name (`fc1.weight`), its value in the source's
    layout, its kind (`weight`, `optimizer`, `bookkeeping`) and, for Keras sources, the layer
    path and the position among that layer's weights."""

    name: str
    value: np.ndarray
    kind: str = "weight"
    layer: str | None = None  # Keras sources: the layer path
    index: int | None = None  # Keras sources: position among the layer's weights
    origin: str | None = None  # how the tensor was made from the file's (split, stacked)


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
        """Tensors per status (assigned, unused, mismatched, not_selected, known_unused) and
        target weights filled / left at init."""
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
    flatten_order: str = "auto",
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
            a layer spec that starts with `input:` (see `reuse.surgery.layer_spec.build_from_spec`).
        layers: regex (full match) on target layer names: only those layers are restored.
        mapping: renaming rules: "src=dst" strings, (src, dst) pairs, a dict, or a JSON/TOML
            file path (see `reuse.weights.mapping.parse_mapping`).
        strict: fail unless every source weight is assigned and every (selected) target
            weight is filled.
        skip_mismatched: leave shape-mismatched weights at their initial values instead of
            failing.
        check_inputs: inputs (array or .npy path, channels-last) to compare outputs on.
        check_outputs: the expected outputs (array or .npy path). When None and `source` is
            an `nn.Module`, the module computes them.
        tolerance: the largest max-abs difference the check accepts.
        unsafe: allow Lambda layers in Keras model files.
        flatten_order: how a PyTorch Linear after a Flatten is reordered: "auto" (C·H·W rows
            to Keras' H·W·C, unless a Permute feeds the Flatten), "nchw" (always), "none".

    Returns:
        An ImportReport; `report.model` is the filled Keras model.

    Raises:
        WeightImportError: nothing matches, an ambiguous match, shape mismatches (unless
            `skip_mismatched`), an unconverted layer (recurrent), a failed `strict` or check.
            The error's `report` attribute holds the report so far.
        ModelLoadError: the source or target cannot be read.
    """
    if flatten_order not in FLATTEN_ORDERS:
        raise UsageError(
            f"--flatten-order must be one of {', '.join(FLATTEN_ORDERS)}. Received: {flatten_order!r}",
            "auto reorders PyTorch's C·H·W rows unless a Permute feeds the Flatten",
        )
    model = _resolve_target(into, unsafe=unsafe)
    selector = compile_layers(layers)
    rules = parse_mapping(mapping)
    src = _read_source(source, unsafe=unsafe)
    rep = ImportReport(source=src.label)
    plan = _match(src, model, rules, selector, rep, flatten_order)
    _finish(src, model, plan, selector, rep, strict=strict, skip_mismatched=skip_mismatched)
    rep.model = model
    if check_inputs is not None:
        rep.check = run_check(
            model, check_inputs, check_outputs, torch_module=src.module, tolerance=tolerance
        )
        if not rep.check["passed"]:
            others = [o for o in FLATTEN_ORDERS if o != flatten_order]
            _raise(
                rep,
                f"the imported model's outputs differ from the reference by {rep.check['max_abs_diff']:.3g} "
                f"(tolerance {tolerance:g})",
                "check the layer order, activations and epsilons (see the report); if a Dense follows "
                f"a Flatten, try --flatten-order {' or '.join(others)}; or raise --tolerance",
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
        return _Source("dict", _expanded(tensors), keras_native=False)
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
    return _Source(str(p), tensors if native else _expanded(tensors), keras_native=native)


def _expanded(tensors: list[SourceTensor]) -> list[SourceTensor]:
    """PyTorch-layout tensors with recurrent biases stacked and attention projections split
    (`reuse.weights.layouts.expand_torch_tensors`); optimizer and bookkeeping tensors kept."""
    weights = [(t.name, t.value) for t in tensors if t.kind == "weight"]
    others = [t for t in tensors if t.kind != "weight"]
    return [SourceTensor(n, v, origin=o) for n, v, o in expand_torch_tensors(weights)] + others


def _is_keras_model_file(p: Path) -> bool:
    """Whether `p` holds a whole Keras model (read as a model, not as a weight file)."""
    from reuse.formats.paths import MODEL_KINDS, classify

    return classify(p) in MODEL_KINDS


def _keras_model_source(model, label: str) -> _Source:
    from reuse.surgery.layer_tree import leaves

    tensors = []
    for entry in leaves(model):
        for i, w in enumerate(entry.layer.weights):
            tensors.append(
                SourceTensor(
                    f"{entry.path}/{short_name(w)}",
                    np.asarray(w.numpy()),
                    layer=entry.path,
                    index=i,
                )
            )
    return _Source(label, tensors, keras_native=True)


def _torch_module_source(module) -> _Source:
    tensors = _expanded(
        [SourceTensor(k, v.detach().cpu().numpy()) for k, v in module.state_dict().items()]
    )
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
        from reuse.surgery.layer_spec import build_from_spec

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


# --- matching ------------------------------------------------------------------------------


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


def _match(
    src: _Source, model, rules, selector, rep: ImportReport, flatten_order: str
) -> list[_Assignment]:
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
            "note": t.origin,
        }
        rep.tensors.append(row)
        if t.kind != "weight":
            row["status"] = STATUS_OPTIMIZER if t.kind == "optimizer" else STATUS_KNOWN_UNUSED
            continue
        if t.layer is not None and t.index is not None:
            key, param = t.layer, str(t.index)
            name_for_rules = f"{t.layer}/{t.index}"
        else:
            key, param = split_name(t.name)
            name_for_rules = t.name
        key, param, mapped = apply_mapping(name_for_rules, key, param, rules)
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
            if selector is not None and not selected(selector, key.replace(".", "/")):
                row["status"] = STATUS_NOT_SELECTED
            else:
                row["note"] = f"no target layer named '{key}'"
            continue
        if not selected(selector, entry.path):
            row["status"] = STATUS_NOT_SELECTED
            row["target"] = entry.path
            continue
        assignment = _plan_tensor(t, src, entry, param, row, flatten_order)
        if assignment is not None:
            plan.append(assignment)
    return plan


def _plan_tensor(
    t: SourceTensor, src: _Source, entry, param: str, row: dict, flatten_order: str
) -> _Assignment | None:
    layer = entry.layer
    cls = type(layer).__name__
    if not src.keras_native:
        refuse_recurrent(layer, entry.path, t.name)
    weights = list(layer.weights)
    value = t.value
    conversion = None
    label = None  # the weight's name in the report: its own, or `query/kernel` in a sublayer
    if param.isdigit():
        i = int(param)
        if i >= len(weights):
            row["note"] = f"layer '{entry.path}' has {len(weights)} weights, no weight #{i}"
            return None
        weight = weights[i]
    else:
        wanted, value, conversion = convert(
            param, value, layer, entry.path, row, flatten_order=flatten_order
        )
        if wanted is None:
            return None
        weight = next(
            (
                w
                for w in weights
                if (w.path.endswith("/" + wanted) if "/" in wanted else short_name(w) == wanted)
            ),
            None,
        )
        if weight is None:
            row["note"] = f"layer '{entry.path}' ({cls}) has no weight '{wanted}'"
            return None
        label = wanted if "/" in wanted else None
    target_shape = tuple(int(d) for d in weight.shape)
    row["target"] = f"{entry.path}/{label or short_name(weight)}"
    row["target_shape"] = list(target_shape)
    row["conversion"] = conversion
    if tuple(value.shape) != target_shape:
        row["status"] = STATUS_MISMATCH
        row["note"] = mismatch_hint(t.value, value, target_shape, conversion)
        return None
    return _Assignment(row, weight, value, entry.path, layer)


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
    if not src.keras_native:
        rep.warnings.extend(
            bn_epsilon_warnings(plan, src.torch_eps, lambda name: split_name(name)[0])
        )
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
                    "weight": f"{entry.path}/{short_name(w)}",
                    "shape": [int(d) for d in w.shape],
                    "status": "filled" if a else "left at init",
                    "source": a.row["name"] if a else None,
                    "selected": selected(selector, entry.path),
                }
            )
