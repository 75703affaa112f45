"""The layers of a model as a flat list, nested models included as `outer/inner`.

Every command that names layers (inspect, freeze, cache-features, finetune) addresses them
through this list, so a name means the same thing everywhere. Nested models (a
`keras.applications` base inside a Sequential) appear as a container entry followed by their
own layers; leaf layers get an index, counted from 0 over leaves only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reuse.core.errors import LayerNotFound
from reuse.core.spec_grammar import closest


@dataclass
class LayerEntry:
    path: str  # "outer/inner"
    layer: object  # the keras layer
    depth: int
    index: int | None  # position among leaf layers; None for containers
    parent: str | None
    children: list[str] = field(default_factory=list)

    @property
    def is_container(self) -> bool:
        return self.index is None


def _is_container(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model) and bool(getattr(layer, "layers", None))


def walk(model) -> list[LayerEntry]:
    """Depth-first list of the model's layers, containers before their contents."""
    entries: list[LayerEntry] = []
    counter = [0]

    def visit(container, prefix: str, depth: int, parent: str | None):
        for layer in container.layers:
            path = f"{prefix}{layer.name}"
            if _is_container(layer):
                entry = LayerEntry(path, layer, depth, None, parent)
                entries.append(entry)
                visit(layer, path + "/", depth + 1, path)
                entry.children = [e.path for e in entries if e.parent == path]
            else:
                entries.append(LayerEntry(path, layer, depth, counter[0], parent))
                counter[0] += 1

    visit(model, "", 0, None)
    return entries


def leaves(model) -> list[LayerEntry]:
    return [e for e in walk(model) if not e.is_container]


def names(model) -> list[str]:
    return [e.path for e in walk(model)]


def find(model_or_entries, name: str) -> LayerEntry:
    """The entry for `name` ("outer/inner", or a bare name when it is unique).

    Raises:
        LayerNotFound: no such layer; the message lists the closest real names.
    """
    entries = model_or_entries if isinstance(model_or_entries, list) else walk(model_or_entries)
    for e in entries:
        if e.path == name:
            return e
    bare = [e for e in entries if e.path.rsplit("/", 1)[-1] == name]
    if len(bare) == 1:
        return bare[0]
    all_names = [e.path for e in entries]
    if len(bare) > 1:
        raise LayerNotFound(
            f"layer name '{name}' is ambiguous: {', '.join(e.path for e in bare)}",
            "use the full outer/inner name",
        )
    near = closest(name, all_names)
    hint = savedmodel_hint(entries) or (
        f"did you mean: {', '.join(near)}"
        if near
        else "run `reuse inspect MODEL` to list the layer names"
    )
    raise LayerNotFound(f"no layer named '{name}'", hint)


def savedmodel_hint(entries: list[LayerEntry]) -> str | None:
    """For a layer name that is not found in a model holding a SavedModel block: the block's
    inner layers (the groups of variables `reuse inspect SAVEDMODEL` lists) cannot be named,
    only the block as a whole. None when the model holds no SavedModel block."""
    import keras

    block_type = getattr(keras.layers, "TFSMLayer", None)
    blocks = [e.path for e in entries if block_type and isinstance(e.layer, block_type)]
    if not blocks:
        return None
    return (
        f"a SavedModel loads as one block, '{blocks[0]}', whose inner layers cannot be named "
        "one by one (`reuse inspect` lists its variables by layer, not its layers); name the "
        f"whole block, '{blocks[0]}', or use the model saved as .keras to reach its layers"
    )


def weight_count(layer) -> int:
    total = 0
    for w in layer.weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


def output_shape(layer):
    """The layer's output shape as lists (None for the batch), or None when unknown."""
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None

    def one(t):
        return [None if d is None else int(d) for d in t.shape]

    if isinstance(out, (list, tuple)):
        return [one(t) for t in out]
    if isinstance(out, dict):
        return [one(t) for t in out.values()]
    return one(out)
