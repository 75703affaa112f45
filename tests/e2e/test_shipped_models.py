"""The shipped models (models/*.keras): their layers, their cards, their accuracy, their build
script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.helpers import ROOT

MODELS = ROOT / "models"
SHIPPED = {
    # name: (input width, hidden layers, units per hidden layer)
    "digits_0to4": (64, 4, 64),
    "mnist_0to4": (784, 5, 100),
}
MAX_BYTES = 2 * 1024 * 1024


def card_facts(path) -> dict[str, str]:
    """The `key` | value rows of a model card's facts table."""
    return dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", path.read_text(), flags=re.M))


@pytest.fixture(scope="module")
def loaded():
    from reuse.formats.model_io import load_model

    return {name: load_model(MODELS / f"{name}.keras") for name in SHIPPED}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_has_the_documented_layers(name, loaded):
    n_in, hidden, units = SHIPPED[name]
    model = loaded[name]
    names = [layer.name for layer in model.layers]
    assert names == [f"hidden{i}" for i in range(1, hidden + 1)] + ["output"]
    assert tuple(model.input_shape) == (None, n_in)
    assert tuple(model.output_shape) == (None, 5)
    for layer in model.layers[:-1]:
        config = layer.get_config()
        assert config["units"] == units
        assert config["activation"] == "elu"
        assert config["kernel_initializer"]["class_name"] == "HeNormal"
    assert model.layers[-1].get_config()["activation"] == "softmax"
    card = (MODELS / f"{name}.md").read_text()
    for layer_name in names:
        assert f"`{layer_name}`" in card


@pytest.mark.parametrize("name", SHIPPED)
def test_card_matches_the_shipped_file(name, loaded):
    from reuse.core.reproducible import sha256_file

    path = MODELS / f"{name}.keras"
    facts = card_facts(MODELS / f"{name}.md")
    assert facts["sha256"] == sha256_file(path)
    assert int(facts["size_bytes"]) == path.stat().st_size < MAX_BYTES
    assert int(facts["parameters"]) == loaded[name].count_params()
    # No optimizer state, no wall-clock stamps: what makes the sha256 reproducible.
    with zipfile.ZipFile(path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"optimizer" not in archive.read("model.weights.h5")
        assert not json.loads(archive.read("config.json")).get("compile_config")


def test_digits_model_accuracy_on_its_test_split(loaded):
    from reuse.data.demo import digits_split

    test = digits_split(range(5), seed=0)["test"]
    pred = np.argmax(loaded["digits_0to4"].predict(test["x"], verbose=0), axis=1)
    accuracy = float((pred == test["y"]).mean())
    # Measured 1.0000 (180/180, see the card); a broken model or split falls far below.
    assert accuracy >= 0.95
    assert float(card_facts(MODELS / "digits_0to4.md")["test_accuracy"]) == pytest.approx(
        accuracy, abs=0.006
    )


@pytest.mark.slow
def test_mnist_model_reproduces_its_card_accuracy(mnist_dir, loaded):
    from reuse.data.idx import read_idx

    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    keep = labels < 5
    x = images[keep].reshape(int(keep.sum()), -1).astype(np.float32) / 255.0
    pred = np.argmax(loaded["mnist_0to4"].predict(x, batch_size=1024, verbose=0), axis=1)
    accuracy = float((pred == labels[keep]).mean())
    card = float(card_facts(MODELS / "mnist_0to4.md")["test_accuracy"])
    assert abs(accuracy - card) <= 0.001


def test_digits_build_script_writes_a_model_and_a_matching_card(tmp_path):
    from reuse.core.reproducible import sha256_file
    from reuse.formats.model_io import load_model

    out = tmp_path / "digits.keras"
    # Three epochs keep the test short; the full recipe is what the card of the shipped model says.
    run = subprocess.run(
        [sys.executable, str(MODELS / "build_digits_0to4.py"), "-o", str(out), "--epochs", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    facts = card_facts(tmp_path / "digits.md")
    assert facts["sha256"] == sha256_file(out)
    assert int(facts["size_bytes"]) == out.stat().st_size
    assert facts["epochs"].endswith("(best of 3 run)")
    assert f"sha256: {facts['sha256']}" in run.stdout
    assert [layer.name for layer in load_model(out).layers][:2] == ["hidden1", "hidden2"]
