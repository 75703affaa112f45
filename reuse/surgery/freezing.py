"""Choose layers of a model and freeze or unfreeze them (`reuse freeze`, `reuse unfreeze`).

Selectors address layers through `reuse.surgery.layer_tree`, so a name means here what it means in
`reuse inspect`. Ranges (`upto`, `from_`/`to`, `index`, `except_top`) count leaf layers only,
so `upto="base/block_3_add"` stops inside a nested model instead of taking it whole; `layers`
(a regex) and a named container select everything inside that container.

Keras 3 propagates `container.trainable = X` to every sublayer, and a container whose flag is
False hides all its weights from `trainable_weights`. So the flags are applied top-down:
containers first (trainable iff some leaf inside stays trainable), then each leaf.

A frozen BatchNormalization runs in inference mode when the model is trained later: Keras 3
ties BN's training behaviour to `trainable`, and the flag is saved with the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reuse.core.errors import SelectionError, UsageError
from reuse.surgery import layer_tree
from reuse.surgery.layer_tree import LayerEntry

SELECTOR_FLAGS = ("--upto", "--from/--to", "--layers", "--index", "--all", "--except-top")


@dataclass
class FreezeChange:
    """What a `freeze` / `unfreeze` call did to a model.

    "Layers" here are leaf layers that own parameters: a Dropout or an InputLayer can be
    selected, but its flag changes nothing, so it is not counted.
    """

    action: str  # "freeze" or "unfreeze"
    selected: list[str]  # leaf paths the selector chose (weightless ones included)
    frozen_now: list[str]  # layers that went from trainable to frozen
    unfrozen_now: list[str]  # layers that went from frozen to trainable
    params_frozen: int  # parameters in `frozen_now`
    params_unfrozen: int  # parameters in `unfrozen_now`
    trainable: dict[str, int]  # layer -> parameters, for the layers that train now
    frozen: dict[str, int]  # layer -> parameters, the whole frozen set now
    # where the model can be cut below the trainable layers: the top of the frozen part, or
    # the highest valid cut point below it when a skip connection crosses that top (which
    # then is `extra["frozen_top"]`); None when nothing is frozen
    cut: str | None
    extra: dict = field(default_factory=dict)

    @property
    def changed(self) -> list[str]:
        return self.frozen_now + self.unfrozen_now

    @property
    def trainable_params(self) -> int:
        return sum(self.trainable.values())

    @property
    def frozen_params(self) -> int:
        return sum(self.frozen.values())

    @property
    def all_frozen(self) -> bool:
        """True when no layer with parameters is left to train."""
        return not self.trainable and bool(self.frozen)

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "selected": self.selected,
            "frozen_now": self.frozen_now,
            "unfrozen_now": self.unfrozen_now,
            "params_frozen": self.params_frozen,
            "params_unfrozen": self.params_unfrozen,
            "trainable": self.trainable,
            "frozen": self.frozen,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "cut": self.cut,
        }


def parse_index(text: str) -> slice:
    """`"A:B"`, `":-2"`, `"3:"`, `"A:B:C"` or a single `"N"` as a slice over leaf layers.

    Raises:
        UsageError: the text is not a slice, or its step is 0.
    """
    value = str(text).strip()
    bad = UsageError(
        f"`--index` must be a Python slice such as 0:3, :-2 or 4:. Received: --index={text}",
        "counting starts at 0 over the rows that `reuse inspect` numbers; negatives count from the top",
    )
    parts = value.split(":")
    if not value or len(parts) > 3:
        raise bad
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise bad from None
    if len(numbers) == 1:
        n = numbers[0]
        if n is None:
            raise bad
        return slice(n, None if n == -1 else n + 1)
    if len(numbers) == 3 and numbers[2] == 0:
        raise UsageError(
            f"the step of `--index` must not be 0. Received: --index={text}",
            "use a non-zero step (e.g. --index 0:6:2) or leave it out (--index 0:6)",
        )
    return slice(*numbers)


def _kinds(upto, from_, to, layers, index, all, except_top) -> list[str]:
    kinds = []
    if upto is not None:
        kinds.append("--upto")
    if from_ is not None or to is not None:
        kinds.append("--from/--to")
    if layers is not None:
        kinds.append("--layers")
    if index is not None:
        kinds.append("--index")
    if all:
        kinds.append("--all")
    if except_top is not None:
        kinds.append("--except-top")
    return kinds


def _leaf_span(entries: list[LayerEntry], entry: LayerEntry) -> tuple[int, int]:
    """First and last leaf index covered by `entry` (a container covers its contents)."""
    if not entry.is_container:
        return entry.index, entry.index
    inside = [
        e.index for e in entries if not e.is_container and e.path.startswith(entry.path + "/")
    ]
    if not inside:
        raise SelectionError(
            f"the nested model '{entry.path}' has no layers", "choose another layer"
        )
    return min(inside), max(inside)


def _expand(entries: list[LayerEntry], chosen: list[LayerEntry]) -> list[LayerEntry]:
    """Leaf entries of `chosen`, containers replaced by everything inside them, in model order."""
    prefixes = [e.path + "/" for e in chosen if e.is_container]
    paths = {e.path for e in chosen if not e.is_container}
    return [
        e
        for e in entries
        if not e.is_container and (e.path in paths or any(e.path.startswith(p) for p in prefixes))
    ]


def check_selector(
    *,
    upto: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    layers: str | None = None,
    index: str | slice | None = None,
    all: bool = False,  # noqa: A002 - the CLI flag is --all
    except_top: int | None = None,
) -> None:
    """Check that exactly one selector kind is given and its value is well formed (no model needed).

    Example:
        >>> check_selector(upto="hidden2", layers="x")
        Traceback (most recent call last):
        reuse.core.errors.UsageError: --upto and --layers cannot be used together — ...

    Raises:
        UsageError: no selector, several kinds, a malformed --index / --layers / --except-top.
    """
    kinds = _kinds(upto, from_, to, layers, index, all, except_top)
    if not kinds:
        raise UsageError(
            "no layers chosen",
            "pass one selector: " + ", ".join(SELECTOR_FLAGS),
        )
    if len(kinds) > 1:
        raise UsageError(
            f"{' and '.join(kinds)} cannot be used together",
            "pass exactly one selector (pipe one command into another to combine them)",
        )
    if index is not None and not isinstance(index, slice):
        parse_index(index)
    if layers is not None:
        try:
            re.compile(layers)
        except re.error as err:
            raise UsageError(
                f"`--layers` is not a valid regular expression ({err}). Received: --layers={layers}",
                "quote it in the shell, e.g. --layers 'hidden[123]'",
            ) from None
    if except_top is not None and (
        isinstance(except_top, bool) or not isinstance(except_top, int) or except_top < 0
    ):
        raise UsageError(
            f"`--except-top` must be an integer >= 0. Received: --except-top={except_top}",
            "e.g. --except-top 1 selects every layer but the output layer",
        )


def select(
    model,
    *,
    upto: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    layers: str | None = None,
    index: str | slice | None = None,
    all: bool = False,  # noqa: A002 - the CLI flag is --all
    except_top: int | None = None,
) -> list[LayerEntry]:
    """The leaf layers one selector chooses, in model order (containers expanded).

    Exactly one selector kind must be given (`from_` and `to` together count as one).

    Example:
        >>> [e.path for e in select(model, upto="hidden2")]
        ['hidden1', 'hidden2']

    Args:
        model: a Keras model (nested models are addressed as `outer/inner`).
        upto: from the first leaf up to and including this layer.
        from_: first layer of a range (alone: up to the top).
        to: last layer of a range, inclusive (alone: from the bottom).
        layers: a regex that must fully match a layer's `outer/inner` path or its own name;
            a matching container selects everything inside it.
        index: a Python slice over leaf layers ("2:5", ":-1"), or a `slice`.
        all: every layer.
        except_top: every leaf but the top N.

    Returns:
        The selected `LayerEntry`s (leaves only), never empty.

    Raises:
        UsageError: no selector, several selector kinds, or a malformed value.
        LayerNotFound: a name the model does not have (the message lists the closest names).
        SelectionError: the selection is empty, or `from_` comes after `to`.
    """
    check_selector(
        upto=upto, from_=from_, to=to, layers=layers, index=index, all=all, except_top=except_top
    )
    entries = layer_tree.walk(model)
    leaf_entries = [e for e in entries if not e.is_container]
    if not leaf_entries:
        raise SelectionError("the model has no layers", "check the model file")
    last = len(leaf_entries) - 1

    if upto is not None:
        _, hi = _leaf_span(entries, layer_tree.find(entries, upto))
        chosen = leaf_entries[: hi + 1]
        description = f"--upto {upto}"
    elif from_ is not None or to is not None:
        lo = _leaf_span(entries, layer_tree.find(entries, from_))[0] if from_ is not None else 0
        hi = _leaf_span(entries, layer_tree.find(entries, to))[1] if to is not None else last
        if lo > hi:
            raise SelectionError(
                f"--from {from_} (layer {lo}) comes after --to {to} (layer {hi}): the range is empty",
                "swap them: --from names the lower layer, --to the higher one",
            )
        chosen = leaf_entries[lo : hi + 1]
        description = f"--from {from_} --to {to}"
    elif layers is not None:
        pattern = re.compile(layers)
        matched = [
            e
            for e in entries
            if pattern.fullmatch(e.path) or pattern.fullmatch(e.path.rsplit("/", 1)[-1])
        ]
        if not matched:
            if any(re.fullmatch(f"(?:{layers}).*", e.path.rsplit("/", 1)[-1]) for e in entries):
                raise SelectionError(
                    f"no layer name fully matches --layers '{layers}'",
                    f"the pattern must match a whole name: to match a prefix, pass --layers '{layers}.*'",
                )
            near = layer_tree.closest(layers, [e.path for e in entries])
            hint = layer_tree.savedmodel_hint(entries) or (
                f"the pattern must match a whole name; closest names: {', '.join(near)}"
                if near
                else "the pattern must match a whole name (add .* to match a prefix); "
                "run `reuse inspect MODEL` to list the names"
            )
            raise SelectionError(f"no layer name fully matches --layers '{layers}'", hint)
        chosen = _expand(entries, matched)
        description = f"--layers {layers}"
    elif index is not None:
        piece = index if isinstance(index, slice) else parse_index(index)
        chosen = leaf_entries[piece]
        description = f"--index {index}"
    elif all:
        chosen = list(leaf_entries)
        description = "--all"
    else:
        # max(0, ...): a stop below 0 would count from the top ([:-1] for N = len + 1).
        chosen = leaf_entries[: max(0, len(leaf_entries) - except_top)]
        description = f"--except-top {except_top}"

    if not chosen:
        raise SelectionError(
            f"{description} selects no layer (the model has {len(leaf_entries)} layers, numbered 0 to {last})",
            "run `reuse inspect MODEL` to see the layers and their numbers",
        )
    return chosen


def _effective(entries: list[LayerEntry], model) -> dict[str, bool]:
    """Whether each leaf trains now: its own flag and every enclosing container's flag."""
    flags = {e.path: bool(e.layer.trainable) for e in entries}
    root = bool(getattr(model, "trainable", True))
    out = {}
    for e in entries:
        if e.is_container:
            continue
        ok = root and flags[e.path]
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            ok = ok and flags.get("/".join(parts[:i]), True)
        out[e.path] = ok
    return out


def set_trainable(model, wanted: dict[str, bool]) -> None:
    """Give every leaf the flag in `wanted` (leaf path -> trainable), containers top-down.

    A container becomes trainable when some leaf inside it should train, else frozen; setting
    it first lets the leaf flags that follow stick (Keras propagates a container's flag down).
    """
    entries = layer_tree.walk(model)
    leaf_paths = [e.path for e in entries if not e.is_container]

    def any_inside(prefix: str) -> bool:
        return any(wanted[p] for p in leaf_paths if p.startswith(prefix))

    model.trainable = any(wanted.values())
    for e in entries:  # walk() lists containers before their contents
        if e.is_container:
            e.layer.trainable = any_inside(e.path + "/")
    for e in entries:
        if not e.is_container:
            e.layer.trainable = wanted[e.path]


def _apply(model, action: str, only: bool, chosen: list[LayerEntry]) -> FreezeChange:
    entries = layer_tree.walk(model)
    leaf_entries = [e for e in entries if not e.is_container]
    before = _effective(entries, model)
    selected = {e.path for e in chosen}
    train_selected = action == "unfreeze"
    wanted = {}
    for e in leaf_entries:
        if e.path in selected:
            wanted[e.path] = train_selected
        elif only:
            wanted[e.path] = not train_selected
        else:
            wanted[e.path] = before[e.path]
    set_trainable(model, wanted)
    after = _effective(layer_tree.walk(model), model)
    change = _describe(action, leaf_entries, chosen, before, after)
    return _valid_cut(model, change)


def _valid_cut(model, change: FreezeChange) -> FreezeChange:
    """`change` with a cut the model can be split at: the top of the frozen part when that is
    a valid cut point, else the highest valid one below it (a skip connection crossing the
    frozen top, as in a residual block, makes it invalid). The frozen top goes to `extra`."""
    if change.cut is None:
        return change
    from reuse.surgery import cuts

    graph = cuts.trace(model)
    if change.cut in cuts.valid_cut_points(model, graph):
        return change
    change.extra["frozen_top"] = change.cut
    change.cut = cuts.frozen_prefix_top(model, graph)
    return change


def _describe(action, leaf_entries, chosen, before, after) -> FreezeChange:
    counts = {e.path: layer_tree.weight_count(e.layer) for e in leaf_entries}
    weighted = [e.path for e in leaf_entries if counts[e.path] > 0]
    frozen_now = [p for p in weighted if before[p] and not after[p]]
    unfrozen_now = [p for p in weighted if not before[p] and after[p]]
    # The cut may be a weightless layer (an Add closing a residual block): its flag was set
    # with the selection, and the cached output must be taken after it.
    cut = None
    for e in leaf_entries:
        if after[e.path]:
            if counts[e.path] > 0:
                break
            continue
        cut = e.path
    return FreezeChange(
        action=action,
        selected=[e.path for e in chosen],
        frozen_now=frozen_now,
        unfrozen_now=unfrozen_now,
        params_frozen=sum(counts[p] for p in frozen_now),
        params_unfrozen=sum(counts[p] for p in unfrozen_now),
        trainable={p: counts[p] for p in weighted if after[p]},
        frozen={p: counts[p] for p in weighted if not after[p]},
        cut=cut,
    )


def freeze(
    model,
    *,
    upto: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    layers: str | None = None,
    index: str | slice | None = None,
    all: bool = False,  # noqa: A002 - the CLI flag is --all
    except_top: int | None = None,
    only: bool = False,
) -> FreezeChange:
    """Make the selected layers non-trainable, in place; the others keep their flags.

    Example:
        >>> change = freeze(model, upto="hidden2")
        >>> change.frozen_now, change.params_frozen
        (['hidden1', 'hidden2'], 96)

    Args:
        model: a Keras model, changed in place (save it to keep the flags).
        upto, from_, to, layers, index, all, except_top: one selector, as in `select`.
        only: make the selection the whole frozen set: every other layer becomes trainable.

    Returns:
        A `FreezeChange`: what changed, what remains trainable, the frozen set and the cut.

    Raises:
        UsageError, LayerNotFound, SelectionError: as `select`.
    """
    chosen = select(
        model,
        upto=upto,
        from_=from_,
        to=to,
        layers=layers,
        index=index,
        all=all,
        except_top=except_top,
    )
    return _apply(model, "freeze", only, chosen)


def unfreeze(
    model,
    *,
    upto: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    layers: str | None = None,
    index: str | slice | None = None,
    all: bool = False,  # noqa: A002 - the CLI flag is --all
    except_top: int | None = None,
    only: bool = False,
) -> FreezeChange:
    """Make the selected layers trainable, in place; the others keep their flags.

    Unfreezing a layer inside a frozen nested model makes that container trainable and
    keeps its other layers frozen.

    Example:
        >>> freeze(model, all=True)
        >>> change = unfreeze(model, from_="hidden4")   # the top layers train again
        >>> sorted(change.trainable)
        ['hidden4', 'hidden5', 'output']

    Args:
        model: a Keras model, changed in place.
        upto, from_, to, layers, index, all, except_top: one selector, as in `select`.
        only: make the selection the only trainable layers: every other layer is frozen.

    Returns:
        A `FreezeChange`.

    Raises:
        UsageError, LayerNotFound, SelectionError: as `select`.
    """
    chosen = select(
        model,
        upto=upto,
        from_=from_,
        to=to,
        layers=layers,
        index=index,
        all=all,
        except_top=except_top,
    )
    return _apply(model, "unfreeze", only, chosen)


def frozen_layers(model) -> list[str]:
    """Paths of the leaf layers with parameters that do not train (container flags included)."""
    entries = layer_tree.walk(model)
    eff = _effective(entries, model)
    return [
        e.path
        for e in entries
        if not e.is_container and layer_tree.weight_count(e.layer) > 0 and not eff[e.path]
    ]
