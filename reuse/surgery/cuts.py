"""Graph cuts: where a model can be split into a frozen bottom and a trainable top.

A layer is a valid cut point when its output alone determines everything above it: no skip
connection crosses it. `cache-features` writes the outputs of cut points (taps); `finetune`
trains the part above a tap from the cache. Both address layers as `reuse.surgery.layer_tree` does
(nested models as `outer/inner`) and both build their sub-models here, so a name means the
same thing in both.

The model is flattened into one graph of leaf layers by tracing it symbolically: every leaf
layer is called again, in topological order, on new symbolic tensors, descending into nested
models (a `keras.applications` base inside a Sequential). The sub-models share the original
layer objects, so they share weights with the model.

    graph = trace(model)
    valid_cut_points(model)                     # ["hidden1", ..., "output"]
    bottom = bottom_model(model, ["hidden2"])   # inputs -> hidden2 output
    top = top_model(model, "hidden2")           # hidden2 output -> model output
    # top(bottom(x)) == model(x)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reuse.core.errors import CutError
from reuse.surgery.layer_kinds import TRAINING_NOISE

# Augmentation layers that are not named Random*.
_AUGMENTATION_EXTRA = frozenset({"AugMix", "RandAugment", "CutMix", "MixUp", "Solarization"})


def is_augmentation(layer) -> bool:
    """True for data-augmentation layers (RandomFlip, RandomRotation, ..., MixUp)."""
    name = type(layer).__name__
    return name.startswith("Random") or name in _AUGMENTATION_EXTRA


def is_training_noise(layer) -> bool:
    """True for layers that only add noise in training (Dropout, GaussianNoise, ...)."""
    return type(layer).__name__ in TRAINING_NOISE


@dataclass
class Call:
    """One call of a leaf operation in the flattened graph."""

    path: str  # "outer/inner"
    layer: object
    inputs: list[int]  # ids of the symbolic input tensors
    outputs: list[object]  # the symbolic output tensors
    position: int


@dataclass
class Graph:
    """A model flattened into calls of leaf layers, in topological order."""

    model: object
    inputs: list[object]  # new symbolic inputs the calls were traced from
    calls: list[Call]
    outputs: list[object]  # symbolic model outputs
    producer: dict[int, int] = field(default_factory=dict)  # tensor id -> call position (-1: input)
    call_count: dict[str, int] = field(default_factory=dict)

    def by_path(self, path: str) -> Call | None:
        for c in self.calls:
            if c.path == path:
                return c
        return None

    def ancestors(self, positions: list[int]) -> list[int]:
        """Positions of every call the given calls depend on, the calls included, in order."""
        seen: set[int] = set()
        stack = list(positions)
        while stack:
            p = stack.pop()
            if p < 0 or p in seen:
                continue
            seen.add(p)
            stack.extend(self.producer.get(t, -1) for t in self.calls[p].inputs)
        return sorted(seen)

    def relevant(self) -> list[int]:
        """Positions of the calls on some path to a model output."""
        out_positions = [self.producer.get(id(t), -1) for t in self.outputs]
        return self.ancestors(out_positions)


def _is_container(op) -> bool:
    import keras

    return isinstance(op, keras.Model) and bool(getattr(op, "layers", None))


def _run(container, inputs: list, prefix: str, on_call) -> list:
    """Run `container` on `inputs` (None where unknown), calling `on_call` for every leaf."""
    import keras
    from keras import tree

    if isinstance(container, keras.Sequential):
        x = inputs[0] if inputs else None
        for layer in container.layers:
            # No input yet (below a substituted cut): args None, as for a functional node.
            args, kwargs = ((x,), {}) if x is not None else (None, None)
            x = _dispatch(layer, prefix, args, kwargs, [x], on_call)
        return [x]
    tensor_dict = {
        id(k): v for k, v in zip(container.inputs, inputs, strict=False) if v is not None
    }
    nodes_by_depth = container._nodes_by_depth
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            available = all(id(t) in tensor_dict for t in node.input_tensors)
            if available:
                args, kwargs = node.arguments.fill_in(tensor_dict)
                flat_in = [tensor_dict[id(t)] for t in node.input_tensors]
            else:
                args, kwargs, flat_in = (
                    None,
                    None,
                    [tensor_dict.get(id(t)) for t in node.input_tensors],
                )
            outputs = _dispatch(node.operation, prefix, args, kwargs, flat_in, on_call)
            if outputs is None:
                continue
            for ref, value in zip(node.outputs, tree.flatten(outputs), strict=False):
                if value is not None:
                    tensor_dict[id(ref)] = value
    return [tensor_dict.get(id(t)) for t in container.outputs]


def _dispatch(op, prefix: str, args, kwargs, flat_in: list, on_call):
    from keras import tree

    path = f"{prefix}{op.name}"
    if _is_container(op):
        outs = _run(op, flat_in, path + "/", on_call)
        if len(outs) == 1:
            return outs[0]
        return tree.pack_sequence_as(op._outputs_struct, outs)
    return on_call(path, op, args, kwargs, flat_in)


def _new_inputs(model) -> list:
    import keras

    return [
        keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=f"{t.name}_reuse")
        for t in model.inputs
    ]


def trace(model, *, substitute: dict | None = None, inputs: list | None = None) -> Graph:
    """Flatten `model` into a Graph of leaf calls on new symbolic inputs.

    Args:
        model: a built Keras model (Sequential, functional, nested).
        substitute: {path: symbolic tensor}: use this tensor as the output of that leaf
            instead of calling it (how `top_model` starts above a cut).
        inputs: symbolic tensors standing for the model inputs; None entries mean "not
            available" (only calls reachable from substitutions run). Default: new Inputs.
    """
    from keras import tree

    substitute = substitute or {}
    new_inputs = _new_inputs(model) if inputs is None else inputs
    graph = Graph(model=model, inputs=new_inputs, calls=[], outputs=[])
    for t in new_inputs:
        if t is not None:
            graph.producer[id(t)] = -1

    def on_call(path, op, args, kwargs, flat_in):
        graph.call_count[path] = graph.call_count.get(path, 0) + 1
        if path in substitute:
            out = substitute[path]
        elif args is None:
            return None
        else:
            out = op(*args, **kwargs)
        position = len(graph.calls)
        flat_out = tree.flatten(out)
        in_ids = [id(t) for t in flat_in if t is not None] if path not in substitute else []
        graph.calls.append(Call(path, op, in_ids, flat_out, position))
        for t in flat_out:
            graph.producer[id(t)] = position
        return out

    graph.outputs = [o for o in _run(model, list(new_inputs), "", on_call)]
    return graph


def _leaf_paths(model) -> set[str]:
    from reuse.surgery.layer_tree import leaves

    return {e.path for e in leaves(model)}


def _cut_flags(graph: Graph) -> tuple[list[int], dict[int, bool]]:
    """The relevant call positions, and for each whether no edge crosses it."""
    relevant = graph.relevant()
    rel = set(relevant)
    # Edges between relevant calls (and from the inputs, position -1).
    edges = []
    for p in relevant:
        for t in graph.calls[p].inputs:
            src = graph.producer.get(t, -1)
            if src == -1 or src in rel:
                edges.append((src, p))
    order = {p: i for i, p in enumerate(relevant)}
    order[-1] = -1
    # An edge (a, b) crosses every call strictly between a and b in topological order.
    crossed = [0] * (len(relevant) + 1)
    for a, b in edges:
        lo, hi = order[a] + 1, order[b]
        if lo < hi:
            crossed[lo] += 1
            crossed[hi] -= 1
    flags, running = {}, 0
    for i, p in enumerate(relevant):
        running += crossed[i]
        flags[p] = running == 0
    return relevant, flags


def _valid_positions(graph: Graph, leaf_paths: set[str]) -> tuple[list[int], dict[int, bool]]:
    relevant, flags = _cut_flags(graph)
    valid = {}
    for p in relevant:
        call = graph.calls[p]
        valid[p] = (
            flags[p]
            and call.path in leaf_paths
            and graph.call_count.get(call.path, 0) == 1
            and len(call.outputs) == 1
            and type(call.layer).__name__ != "InputLayer"
        )
    return relevant, valid


def valid_cut_points(model, graph: Graph | None = None) -> list[str]:
    """Names of the layers the model can be cut at, from the input up.

    Example:
        >>> valid_cut_points(residual_model)
        ['stem', 'add', 'top', 'output']

    Args:
        model: a built Keras model.
        graph: a `trace(model)` result, to avoid tracing again.

    Returns:
        Layer names (`outer/inner` inside nested models) in topological order.
    """
    graph = graph or trace(model)
    relevant, valid = _valid_positions(graph, _leaf_paths(model))
    return [graph.calls[p].path for p in relevant if valid[p]]


def resolve(model, name: str, graph: Graph | None = None) -> str:
    """The full leaf path for a layer name: a bare unique name or a nested model's name.

    A nested model's name stands for the leaf that produces its output.

    Raises:
        LayerNotFound: no such layer (with the closest names).
    """
    from reuse.surgery.layer_tree import find

    entry = find(model, name)
    if not entry.is_container:
        return entry.path
    graph = graph or trace(model)
    inner = entry.layer
    if len(inner.outputs) == 1:
        # The leaf inside the container that produced its (single) output.
        last = None
        for call in graph.calls:
            if call.path.startswith(entry.path + "/"):
                last = call
        if last is not None:
            return last.path
    raise CutError(
        f"cannot cut at '{name}': it is a nested model with several outputs",
        "name a layer inside it",
    )


def check_cut(model, name: str, graph: Graph | None = None) -> str:
    """Check that `name` is a valid cut point; return its full path.

    Example:
        >>> check_cut(model, "hidden2")
        'hidden2'

    Raises:
        LayerNotFound: the model has no such layer.
        CutError: skip connections cross the layer (or it is shared, or has several
            outputs); the message names the nearest valid cut points below and above.
    """
    graph = graph or trace(model)
    path = resolve(model, name, graph)
    relevant, valid = _valid_positions(graph, _leaf_paths(model))
    call = graph.by_path(path)
    if call is None or call.position not in valid:
        raise CutError(
            f"cannot cut at '{name}': its output does not reach the model's output",
            "choose a layer on the path from the input to the output",
        )
    if valid[call.position]:
        return path
    idx = relevant.index(call.position)
    below = next((graph.calls[p].path for p in reversed(relevant[:idx]) if valid[p]), None)
    above = next((graph.calls[p].path for p in relevant[idx + 1 :] if valid[p]), None)
    if graph.call_count.get(path, 0) > 1:
        why = "the layer is shared (called more than once)"
    elif len(call.outputs) != 1:
        why = "the layer has several outputs"
    else:
        why = "a skip connection crosses it"
    near = ", ".join(f"{k} '{v}'" for k, v in (("below", below), ("above", above)) if v) or "none"
    raise CutError(f"cannot cut at '{name}': {why}", f"nearest valid cut points: {near}")


def bottom_model(model, taps: list[str], graph: Graph | None = None):
    """A model from the inputs to the outputs of `taps` (shares the layers).

    Example:
        >>> bottom = bottom_model(model, ["hidden2", "hidden4"])
        >>> h2, h4 = bottom(x, training=False)

    Raises:
        LayerNotFound, CutError: as `check_cut` (taps must be valid cut points).
    """
    import keras

    graph = graph or trace(model)
    paths = [check_cut(model, t, graph) for t in taps]
    outputs = [graph.by_path(p).outputs[0] for p in paths]
    inputs = graph.inputs if len(graph.inputs) > 1 else graph.inputs[0]
    return keras.Model(
        inputs, outputs if len(outputs) > 1 else outputs[0], name=f"{model.name}_bottom"
    )


def top_model(model, cut: str, graph: Graph | None = None):
    """A model whose input is the output of `cut` and which runs everything above it.

    Shares the layer objects with `model`, so training the top trains the model.

    Example:
        >>> top = top_model(model, "hidden2")
        >>> np.allclose(top(bottom(x)), model(x))

    Raises:
        LayerNotFound, CutError: as `check_cut`.
    """
    import keras

    graph = graph or trace(model)
    path = check_cut(model, cut, graph)
    ref = graph.by_path(path).outputs[0]
    cut_input = keras.Input(
        shape=tuple(ref.shape[1:]), dtype=ref.dtype, name=f"{path.replace('/', '_')}_features"
    )
    top = trace(model, substitute={path: cut_input}, inputs=[None] * len(model.inputs))
    outputs = top.outputs
    if any(o is None for o in outputs):
        raise CutError(
            f"cannot cut at '{cut}': part of the output does not depend on it",
            "choose a higher layer",
        )
    return keras.Model(
        cut_input, outputs if len(outputs) > 1 else outputs[0], name=f"{model.name}_top"
    )


def frozen_prefix_top(model, graph: Graph | None = None) -> str | None:
    """The default cut: the highest valid cut point below which everything is frozen.

    A layer counts as frozen when `trainable` is False, or when it has no weights and no
    training-only behaviour (Flatten, pooling, activations). Returns None when nothing is frozen.
    """
    graph = graph or trace(model)
    relevant, valid = _valid_positions(graph, _leaf_paths(model))
    best = None
    any_frozen = False
    for p in relevant:
        layer = graph.calls[p].layer
        if type(layer).__name__ == "InputLayer":
            continue
        weights = getattr(layer, "weights", [])
        if getattr(layer, "trainable", True) and (
            weights or is_training_noise(layer) or is_augmentation(layer)
        ):
            break
        if weights and not layer.trainable:
            any_frozen = True
        if valid[p] and any_frozen:
            best = graph.calls[p].path
    return best


def frozen_taps(model, taps: list[str], graph: Graph | None = None) -> list[str]:
    """The taps that depend on frozen layers only, from the input up.

    A stage of training can use a cached tap only when nothing below it trains, so a stage
    trains from `frozen_taps(model, cache.taps)[-1]` (the deepest), or from the raw inputs when
    the list is empty.

    Example:
        >>> model.get_layer("hidden4").trainable = True
        >>> frozen_taps(model, ["hidden2", "hidden3", "hidden4"])
        ['hidden2', 'hidden3']

    Raises:
        LayerNotFound, CutError: a tap is not a valid cut point of the model.
    """
    graph = graph or trace(model)
    result = []
    for tap in taps:
        path = check_cut(model, tap, graph)
        below = graph.ancestors([graph.by_path(path).position])
        if not any(getattr(graph.calls[p].layer, "trainable_weights", None) for p in below):
            result.append(path)
    order = {c.path: c.position for c in graph.calls}
    return sorted(result, key=order.__getitem__)
