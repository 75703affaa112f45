"""reuse.surgery.freezing (`reuse.freeze` / `reuse.unfreeze`): selectors, flags, nested and
residual models."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import LayerNotFound, SelectionError, UsageError
from tests.helpers import (
    MLP_NAMES,
    classification_data,
    flags,
    frozen_of,
    mlp,
    nested_application,
    residual,
)

BASE = "mobilenetv2_0.35_32"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"upto": "hidden2"}, ["hidden1", "hidden2"]),
        ({"from_": "hidden2", "to": "hidden4"}, ["hidden2", "hidden3", "hidden4"]),
        ({"from_": "hidden5"}, ["hidden5", "output"]),
        ({"to": "hidden1"}, ["hidden1"]),
        ({"layers": "hidden[13]"}, ["hidden1", "hidden3"]),
        ({"layers": "hidden.*"}, MLP_NAMES[:5]),
        ({"index": "1:3"}, ["hidden2", "hidden3"]),
        ({"index": ":-2"}, MLP_NAMES[:4]),
        ({"index": "-2:"}, ["hidden5", "output"]),
        ({"index": "4"}, ["hidden5"]),
        ({"index": "-1"}, ["output"]),
        ({"index": "::2"}, ["hidden1", "hidden3", "hidden5"]),
        ({"all": True}, MLP_NAMES),
        ({"except_top": 1}, MLP_NAMES[:5]),
        ({"except_top": 0}, MLP_NAMES),
    ],
)
def test_select_each_kind(kwargs, expected):
    from reuse.surgery.freezing import select

    assert [e.path for e in select(mlp(), **kwargs)] == expected


def test_freeze_sets_exactly_the_selection_and_reports_it():
    from reuse import freeze
    from reuse.surgery.layer_tree import weight_count

    model = mlp()
    change = freeze(model, upto="hidden2")
    assert frozen_of(model) == ["hidden1", "hidden2"]
    assert change.frozen_now == ["hidden1", "hidden2"] and change.unfrozen_now == []
    sizes = {name: weight_count(model.get_layer(name)) for name in MLP_NAMES}
    assert change.params_frozen == sizes["hidden1"] + sizes["hidden2"]
    assert change.trainable == {n: sizes[n] for n in MLP_NAMES[2:]}
    assert change.frozen_params + change.trainable_params == model.count_params()
    assert len(model.trainable_weights) == 2 * 4 and change.cut == "hidden2"
    assert not change.all_frozen


def test_freeze_adds_unfreeze_removes_only_replaces():
    from reuse import freeze, unfreeze

    model = mlp()
    freeze(model, upto="hidden2")
    freeze(model, layers="hidden4")
    assert frozen_of(model) == ["hidden1", "hidden2", "hidden4"]
    change = unfreeze(model, layers="hidden2")
    assert change.unfrozen_now == ["hidden2"] and frozen_of(model) == ["hidden1", "hidden4"]
    assert change.cut == "hidden1"  # the top of the frozen part below the first trainable layer
    freeze(model, layers="hidden3", only=True)
    assert frozen_of(model) == ["hidden3"]
    unfreeze(model, layers="output", only=True)
    assert frozen_of(model) == MLP_NAMES[:5]
    assert freeze(model, all=True).all_frozen


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"upto": "hiden2"}, LayerNotFound, ["no layer named 'hiden2'", "did you mean", "hidden2"]),
        ({"from_": "hidden4", "to": "hidden2"}, SelectionError, ["comes after", "swap"]),
        ({"index": "10:"}, SelectionError, ["selects no layer", "6 layers"]),
        ({"index": "3:1"}, SelectionError, ["selects no layer"]),
        ({"except_top": 6}, SelectionError, ["selects no layer"]),
        ({"layers": "hidden"}, SelectionError, ["fully matches", "--layers 'hidden.*'"]),
        ({"layers": "hiden1"}, SelectionError, ["fully matches", "closest names: hidden1"]),
        ({"layers": "hidden["}, UsageError, ["regular expression", "--layers=hidden["]),
        ({"index": "a:b"}, UsageError, ["Python slice", "--index=a:b"]),
        ({"index": "1:2:0"}, UsageError, ["step"]),
        ({"except_top": -1}, UsageError, ["--except-top=-1"]),
        ({}, UsageError, ["no layers chosen", "--upto"]),
        (
            {"upto": "hidden2", "layers": "x"},
            UsageError,
            ["--upto and --layers cannot be used together"],
        ),
    ],
)
def test_select_errors(kwargs, error, words):
    from reuse.surgery.freezing import select

    with pytest.raises(error) as info:
        select(mlp(), **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.fixture(scope="module")
def transfer_model():
    """The nested application with every layer trainable (the helper freezes the base)."""
    from reuse import unfreeze

    model = nested_application()
    unfreeze(model, all=True)
    return model


@pytest.mark.slow
def test_nested_regex_freezes_part_of_the_base(transfer_model, tmp_path):
    import keras

    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, layers=f"{BASE}/block_1.*")
    expected = [n for n in flags(model) if n.split("/")[-1].startswith("block_1")]
    assert expected and frozen_of(model) == expected == change.frozen_now
    assert f"{BASE}/block_1_expand" in expected and f"{BASE}/block_10_expand" in expected
    assert model.get_layer(BASE).trainable  # the container stays trainable: the rest trains
    inner = model.get_layer(BASE)
    assert not inner.get_layer("block_1_expand_BN").trainable
    trained = {id(w) for w in model.trainable_weights}
    assert id(inner.get_layer("block_2_expand").kernel) in trained
    assert id(inner.get_layer("block_1_expand").kernel) not in trained
    assert model.count_params() == change.frozen_params + change.trainable_params
    # The flags survive a save and a plain Keras load.
    path = tmp_path / "t.keras"
    model.save(path)
    assert frozen_of(keras.models.load_model(path)) == expected


def test_nested_bare_regex_and_name(transfer_model):
    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    freeze(model, layers="block_[1-3]_.*")  # bare names match inside the nested model too
    assert all(
        n.split("/")[-1][:8] in ("block_1_", "block_2_", "block_3_") for n in frozen_of(model)
    )
    unfreeze(model, all=True)
    freeze(model, layers="Conv1")  # a bare name that is unique
    assert frozen_of(model) == [f"{BASE}/Conv1"]


def test_nested_upto_inner_layer_stops_inside_the_base(transfer_model):
    from reuse import freeze, unfreeze
    from reuse.surgery.layer_tree import find, leaves, walk

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, upto=f"{BASE}/block_2_add")
    top = find(walk(model), f"{BASE}/block_2_add").index
    below = [e.path for e in leaves(model) if e.index <= top]
    assert frozen_of(model) == [n for n in flags(model) if n in below]
    assert flags(model)[f"{BASE}/block_3_expand"] and flags(model)["output"]
    assert model.get_layer(BASE).trainable
    assert change.cut == f"{BASE}/block_2_add"  # weightless, but the top of the frozen part


def test_nested_container_selected_whole_and_inner_unfreeze(transfer_model):
    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, layers=BASE)
    assert change.trainable == {"output": 1280 * 3 + 3}
    assert not model.get_layer(BASE).trainable and len(model.trainable_weights) == 2
    # Unfreezing one inner layer makes the container trainable again, the rest stays frozen.
    change = unfreeze(model, layers=f"{BASE}/block_16_project")
    assert model.get_layer(BASE).trainable
    assert change.unfrozen_now == [f"{BASE}/block_16_project"]
    assert set(change.trainable) == {f"{BASE}/block_16_project", "output"}
    assert len(model.trainable_weights) == 1 + 2


def test_residual_functional_model_freeze_upto_add_and_train(tmp_path):
    import keras

    from reuse import freeze

    model = residual()
    change = freeze(model, upto="add")
    assert change.selected == ["inp", "stem", "branch_a", "branch_b", "add"]
    assert frozen_of(model) == ["stem", "branch_a", "branch_b"] and change.cut == "add"
    path = tmp_path / "r.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert frozen_of(loaded) == ["stem", "branch_a", "branch_b"]
    before = [w.numpy().copy() for w in loaded.get_layer("branch_b").weights]
    top_before = loaded.get_layer("top").kernel.numpy().copy()
    x, y = classification_data(32)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for old, w in zip(before, loaded.get_layer("branch_b").weights, strict=True):
        np.testing.assert_array_equal(old, w.numpy())
    assert not np.array_equal(top_before, loaded.get_layer("top").kernel.numpy())


def test_unfreeze_inside_a_model_whose_own_flag_is_false():
    from reuse import unfreeze

    model = mlp()
    model.trainable = False  # how people often freeze a whole base
    assert frozen_of(model) == MLP_NAMES
    change = unfreeze(model, layers="output")
    assert change.unfrozen_now == ["output"] and frozen_of(model) == MLP_NAMES[:5]
    assert len(model.trainable_weights) == 2 and change.cut == "hidden5"
