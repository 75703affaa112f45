"""A SavedModel folder loads as one block; `reuse inspect` lists its variables grouped by
layer (h1, h2, out). Naming one of those layers in freeze / unfreeze / finetune --cut used to
answer "no layer named 'h1' — run `reuse inspect MODEL` to list the layer names", and inspect
lists h1. The hint now says that the block's inner layers cannot be named, and what can."""

from __future__ import annotations

import pytest

from tests.helpers import classification_data, cli, save_npz


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("sm")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="h1")(inputs)
    hidden = keras.layers.Dense(6, activation="relu", name="h2")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden))
    model.export(str(folder / "exported"), verbose=False)
    save_npz(folder / "train.npz", *classification_data(40, n_classes=3))
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ["freeze", "{sm}", "--upto", "h1", "-o", "{out}"],
        ["unfreeze", "{sm}", "--layers", "h1", "-o", "{out}"],
        ["finetune", "{sm}", "--data", "{data}", "--cut", "h2", "--epochs", "1", "-o", "{out}"],
    ],
    ids=lambda a: a[0],
)
def test_an_inner_layer_of_a_savedmodel_is_explained(exported, tmp_path, args):
    inspected = cli(["inspect", exported / "exported"])
    assert inspected.exit_code == 0, inspected.stderr
    assert "h1" in inspected.stdout  # inspect lists the variables of h1...
    out = tmp_path / "out.keras"
    filled = [
        a.format(sm=exported / "exported", out=out, data=exported / "train.npz") for a in args
    ]
    result = cli(filled)
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    # ...which cannot be named: the hint says so and names the block.
    assert "a SavedModel loads as one block, 'savedmodel'" in lines[0]
    assert "run `reuse inspect MODEL`" not in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
