"""The command a stale-cache error offers rebuilds a cache that the refused run accepts: it
carries the data selection (--classes, --per-class, --seed, ...). It used to leave it out, so
running it rebuilt the same mismatched cache."""

from __future__ import annotations

import shlex

import pytest

from tests.helpers import classification_data, cli, mlp, save_npz


def _error_line(result) -> str:
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _cached(tmp_path, name: str, seed: int = 1, frozen: int = 1, hidden: int = 3, rows: int = 60):
    """Save mlp(hidden, seed) as `name` with its first `frozen` layers frozen, `rows` rows of
    train.npz, and cache-features of them into feats.h5; the cache's path."""
    model = mlp(hidden=hidden, seed=seed)
    for layer in model.layers[:frozen]:
        layer.trainable = False
    model.save(tmp_path / name)
    save_npz(tmp_path / "train.npz", *classification_data(rows, n_classes=3))
    cache = tmp_path / "feats.h5"
    made = cli(["cache-features", tmp_path / name, "--data", tmp_path / "train.npz", "-o", cache])
    assert made.exit_code == 0, made.stderr
    return cache


@pytest.mark.slow
def test_rebuild_hint_carries_the_selection_and_works(tmp_path):
    cache = _cached(tmp_path, "base.keras", frozen=2, rows=90)

    selected = ["--classes", "1-2", "--per-class", "20", "--seed", "3"]
    run = ["finetune", tmp_path / "base.keras", "--data", tmp_path / "train.npz", *selected]
    run += ["--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    assert "made from other data" in line
    hint = line.split("rebuild it: ")[1]
    assert "--classes 1,2 --per-class 20 --seed 3" in hint, hint

    argv = shlex.split(hint)
    assert argv[:2] == ["reuse", "cache-features"]
    rebuilt = cli(argv[1:])
    assert rebuilt.exit_code == 0, rebuilt.stderr
    trained = cli(run)
    assert trained.exit_code == 0, trained.stderr
    assert '"used_cache": true' in trained.stdout


def _mnist_folder(folder, rows=60, seed=0):
    """A folder of MNIST-named IDX files (train and t10k) of 8x8 images, 3 classes."""
    import numpy as np

    from reuse.data.idx import write_idx

    rng = np.random.default_rng(seed)
    folder.mkdir()
    for prefix in ("train", "t10k"):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 255, (rows, 8, 8), dtype=np.uint8),
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(rows) % 3).astype(np.uint8))
    return folder


def test_rebuild_hint_for_an_mnist_folder_names_the_folder_and_works(tmp_path):
    """Data read from a folder of IDX files: the hint names the folder (its --split picks the
    files); it used to name the images file, which --split refuses and which has no labels."""
    import keras

    inputs = keras.Input((8, 8))
    x = keras.layers.Flatten(name="flat", trainable=False)(inputs)
    x = keras.layers.Dense(8, name="hidden1", trainable=False)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    model.save(tmp_path / "base.keras")
    folder = _mnist_folder(tmp_path / "mnist")
    cache = tmp_path / "feats.h5"
    made = cli(
        ["cache-features", tmp_path / "base.keras", "--data", folder, "--at", "hidden1"]
        + ["--per-class", "5", "--seed", "0", "-o", cache]
    )
    assert made.exit_code == 0, made.stderr

    run = ["finetune", tmp_path / "base.keras", "--data", folder, "--per-class", "10"]
    run += ["--seed", "0", "--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    hint = line.split("rebuild it: ")[1]
    argv = shlex.split(hint)
    assert argv[argv.index("--data") + 1] == str(folder), hint
    rebuilt = cli(argv[1:])
    assert rebuilt.exit_code == 0, rebuilt.stderr
    trained = cli(run)
    assert trained.exit_code == 0, trained.stderr


def test_rebuild_hint_for_an_idx_file_named_directly_passes_its_labels(tmp_path):
    """IDX images named directly (no --split): the hint passes the labels file with them."""
    from reuse.cache.reader import open_cache

    cache = _cached(tmp_path, "base.keras", hidden=2, rows=30)
    with open_cache(cache) as opened:
        opened.data_identity = {"path": "/d/images.idx", "labels": "/d/labels.idx"}
        assert "--data /d/images.idx --labels /d/labels.idx --at" in opened.rebuild_command()
        opened.data_identity["selection"] = "split=train"
        assert "--data /d --split train --at" in opened.rebuild_command()


def test_a_cache_of_another_model_is_not_offered_a_rebuild_for_that_model(tmp_path):
    """finetune with a cache made from a model whose layers this one lacks: the error says
    which model the cache belongs to and how to cache this one, instead of a "rebuild it"
    command that rebuilds the cache for the other model (with taps this model lacks)."""
    import keras

    cache = _cached(tmp_path, "other.keras")

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    top = keras.layers.Dense(3, activation="softmax", name="out")(
        keras.layers.Dense(6, name="h1")(inputs)
    )
    keras.Model(inputs, top).save(tmp_path / "mine.keras")
    before = cache.read_bytes()
    run = ["finetune", tmp_path / "mine.keras", "--data", tmp_path / "train.npz"]
    run += ["--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    assert "does not fit this model: tap names differ (no layer named 'hidden1'" in line
    assert f"of {(tmp_path / 'other.keras').resolve()}" in line
    assert "rebuild it" not in line
    assert "cache this model's own layers: reuse cache-features" in line
    assert "_reuse" not in line  # not the internal name of the model with its new head
    assert cache.read_bytes() == before
    assert not (tmp_path / "t.keras").exists()


@pytest.mark.slow
def test_the_rebuild_hint_caches_the_model_being_trained(tmp_path):
    """finetune B.keras with a cache made from A.keras (same layers, other weights): the
    rebuild command named A.keras, the cache's own model, so running it rebuilt the same
    stale cache. It names B.keras now, and the rebuilt cache is accepted."""
    _cached(tmp_path, "b.keras", seed=2)
    cache = _cached(tmp_path, "a.keras", seed=1)

    run = ["finetune", tmp_path / "b.keras", "--data", tmp_path / "train.npz", "--features", cache]
    run += ["--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    assert "was made with another model: the weights of hidden1 differ" in line
    hint = line.split("rebuild it: ")[1]
    argv = shlex.split(hint)
    assert argv[:3] == ["reuse", "cache-features", str(tmp_path / "b.keras")], hint
    rebuilt = cli(argv[1:])
    assert rebuilt.exit_code == 0, rebuilt.stderr
    trained = cli(run)
    assert trained.exit_code == 0, trained.stderr
    assert '"used_cache": true' in trained.stdout


def test_a_damaged_cache_names_the_model_given(tmp_path):
    """A cache whose values changed on disk, used with a copy of its model under another
    name: the rebuild command names the model on the command line, not the cache's old one."""
    import shutil

    import h5py

    cache = _cached(tmp_path, "a.keras", frozen=2)
    with h5py.File(cache, "r+") as f:
        f["features/hidden2"][0, 0] += 1.0
    shutil.copy(tmp_path / "a.keras", tmp_path / "copy.keras")
    run = ["finetune", tmp_path / "copy.keras", "--data", tmp_path / "train.npz"]
    line = _error_line(
        cli([*run, "--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"])
    )
    assert "are damaged" in line
    assert f"reuse cache-features {tmp_path / 'copy.keras'} " in line, line


def test_a_cached_tap_above_the_cut_says_so_instead_of_blaming_another_model(tmp_path):
    """cache-features M --at hidden3,output, then finetune M with that cache: the default cut
    drops `output` (the new head replaces it). The error used to call this "a cache of another
    model" and advise training M with it, which is what the run was doing."""
    import keras

    keras.utils.set_random_seed(0)
    model = mlp(hidden=3, seed=1)
    for layer in model.layers:
        layer.trainable = False
    model.save(tmp_path / "base.keras")
    save_npz(tmp_path / "train.npz", *classification_data(60, n_classes=3))
    cache = tmp_path / "feats.h5"
    made = cli(
        ["cache-features", tmp_path / "base.keras", "--data", tmp_path / "train.npz"]
        + ["--at", "hidden3,output", "-o", cache]
    )
    assert made.exit_code == 0, made.stderr
    before = cache.read_bytes()
    run = ["finetune", tmp_path / "base.keras", "--data", tmp_path / "train.npz"]
    run += ["--features", cache, "--epochs", "1", "-o", tmp_path / "t.keras"]
    line = _error_line(cli(run))
    assert "holds output, above the cut hidden3" in line, line
    assert "another model" not in line and "train " not in line.split(" — ")[1], line
    assert "pass --cut output" in line
    assert cache.read_bytes() == before
    assert not (tmp_path / "t.keras").exists()
    kept = cli(run[:-2] + ["--cut", "output", "-o", tmp_path / "t.keras"])
    assert kept.exit_code == 0, kept.stderr
    assert '"used_cache": true' in kept.stdout
