"""The shipped models (models/*.keras), their cards, their build scripts, and the demo data."""

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


def test_demo_data_is_deterministic_and_holds_the_chosen_classes(tmp_path):
    from sklearn.datasets import load_digits

    from reuse.data.demo import write_digits_npz

    first = write_digits_npz(tmp_path / "a", classes=range(5, 10))
    second = write_digits_npz(tmp_path / "b", classes=range(5, 10))
    assert sorted(first) == ["test", "train", "valid"]
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes()
    target = load_digits().target
    seen = []
    for path in first.values():
        with np.load(path) as npz:
            x, y, classes, index = npz["x"], npz["y"], npz["classes"], npz["index"]
        assert x.dtype == np.float32 and x.shape == (len(y), 64)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int64 and set(y.tolist()) == {0, 1, 2, 3, 4}
        assert classes.tolist() == [5, 6, 7, 8, 9]
        assert (classes[y] == target[index]).all()
        seen.append(set(index.tolist()))
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert len(seen[0] | seen[1] | seen[2]) == int(np.isin(target, range(5, 10)).sum())


def test_demo_data_seed_and_keep_labels(tmp_path):
    from reuse.data.demo import digits_split

    base = digits_split(range(5, 10), seed=0)
    other = digits_split(range(5, 10), seed=1)
    assert not np.array_equal(base["train"]["index"], other["train"]["index"])
    kept = digits_split([7, 3], seed=0, remap=False)
    assert set(kept["test"]["y"].tolist()) == {3, 7}
    remapped = digits_split([7, 3], seed=0)
    assert (remapped["test"]["classes"][remapped["test"]["y"]] == kept["test"]["y"]).all()


def test_demo_data_files_fit_the_data_contract(tmp_path):
    from reuse.data.dataset import load_data
    from reuse.data.demo import write_digits_npz

    paths = write_digits_npz(tmp_path, classes=range(5, 10))
    ds = load_data(paths["train"])
    assert ds.input_shape == (64,)
    assert len(ds) == len(ds.y) > 500


def test_demo_data_command_line(tmp_path, capsys):
    from reuse.data.demo import main

    assert main([str(tmp_path / "d"), "--classes", "0,2,4"]) == 0
    out = capsys.readouterr().out
    assert out.count("rows") == 3 and "train.npz" in out
    with np.load(tmp_path / "d" / "valid.npz") as npz:
        assert npz["classes"].tolist() == [0, 2, 4]


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("5-12", "Received: classes=[5, 6, 7, 8, 9, 10, 11, 12]"),
        ("five", "Received: classes='five'"),
        ("3,3", "lists a digit twice"),
    ],
)
def test_demo_data_refuses_bad_classes(tmp_path, capsys, classes, message):
    from reuse.data.demo import main

    assert main([str(tmp_path / "d"), "--classes", classes]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err
    assert not (tmp_path / "d").exists()


def test_demo_data_refuses_bad_fractions_and_a_file_as_folder(tmp_path):
    from reuse.core.errors import DataError, UsageError
    from reuse.data.demo import digits_split, write_digits_npz

    with pytest.raises(UsageError, match=r"Received: fractions=\(0.5, 0.5, 0.5\)"):
        digits_split(fractions=(0.5, 0.5, 0.5))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="not a folder"):
        write_digits_npz(blocker)


def test_normalize_keras_archive_makes_equal_models_equal_bytes(tmp_path, mlp_path):
    from reuse.core.reproducible import FIXED_DATE_SAVED, normalize_keras_archive, sha256_file
    from reuse.formats.model_io import load_model

    model = load_model(mlp_path)
    copy = tmp_path / "copy.keras"
    model.save(copy)
    # Keras stamps the archive with the time; make the two stamps differ for sure.
    with zipfile.ZipFile(copy) as src, zipfile.ZipFile(tmp_path / "later.keras", "w") as dst:
        for info in src.infolist():
            info.date_time = (2030, 1, 1, 0, 0, 0)
            data = src.read(info.filename)
            if info.filename == "metadata.json":
                data = json.dumps(
                    {**json.loads(data), "date_saved": "2030-01-01@00:00:00"}
                ).encode()
            dst.writestr(info, data)
    a = normalize_keras_archive(copy)
    b = normalize_keras_archive(tmp_path / "later.keras")
    assert sha256_file(a) == sha256_file(b)
    with zipfile.ZipFile(a) as archive:
        assert json.loads(archive.read("metadata.json"))["date_saved"] == FIXED_DATE_SAVED
    reloaded = load_model(a)
    for w0, w1 in zip(model.get_weights(), reloaded.get_weights(), strict=True):
        assert np.array_equal(w0, w1)
