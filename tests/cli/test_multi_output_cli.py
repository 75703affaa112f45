"""Models with several outputs and SavedModel blocks: `--output-key` in cache-features,
finetune, lr-find and check; `inspect` listing inputs and outputs; a tuned model on a
SavedModel block (tests/e2e/test_savedmodel_block_elsewhere.py: it reloads from another
directory without --unsafe); a multi-input SavedModel refused with its inputs named."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import classification_data, cli, last_record, save_npz


@pytest.fixture(scope="module")
def two_output_savedmodel(tmp_path_factory):
    """A SavedModel whose signature returns {"coarse": (None, 4), "fine": (None, 6)}."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="h")(inp)
    coarse = keras.layers.Dense(4, name="coarse")(h)
    fine = keras.layers.Dense(6, name="fine")(h)
    folder = tmp_path_factory.mktemp("sm") / "two_outputs"
    keras.Model(inp, {"coarse": coarse, "fine": fine}).export(folder, verbose=False)
    return folder


@pytest.fixture(scope="module")
def train_npz(tmp_path_factory):
    x, y = classification_data(n=60)
    return save_npz(tmp_path_factory.mktemp("data") / "train.npz", x, y)


def test_training_commands_name_the_outputs_and_take_output_key(
    two_output_savedmodel, train_npz, tmp_path
):
    for command in ("cache-features", "finetune", "lr-find", "check"):
        args = [command, two_output_savedmodel, "--data", train_npz]
        args += ["-o", tmp_path / f"{command}.h5"] if command == "cache-features" else []
        args += ["-o", tmp_path / "t.keras"] if command == "finetune" else []
        result = cli(args)
        assert result.exit_code == 2, (command, result.stderr)
        assert "2 outputs (coarse (None, 4), fine (None, 6))" in result.stderr
        assert "--output-key" in result.stderr
    result = cli(["check", two_output_savedmodel, "--data", train_npz, "--output-key", "nope"])
    assert result.exit_code != 0 and "no output 'nope'" in result.stderr
    assert "coarse, fine" in result.stderr


def test_cache_then_finetune_on_one_output_without_a_cut(
    two_output_savedmodel, train_npz, tmp_path
):
    cache = tmp_path / "f.h5"
    result = cli(
        [
            "cache-features",
            two_output_savedmodel,
            "--data",
            train_npz,
            "--output-key",
            "fine",
            "-o",
            cache,
        ]
    )
    assert result.exit_code == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["output_key"] == "fine" and rec["taps"] == ["savedmodel"]
    # The record carries the output key: finetune needs neither --output-key nor --cut.
    result = cli(
        [
            "finetune",
            "-",
            "--data",
            train_npz,
            "--epochs",
            "2",
            "-o",
            tmp_path / "t.keras",
            "--json",
        ],
        input=result.stdout,
    )
    assert result.exit_code == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["cut"] == "savedmodel" and "output_key" not in rec


def test_inspect_lists_every_input_and_output(two_output_savedmodel, tmp_path):
    import keras

    result = cli(["inspect", two_output_savedmodel])
    assert result.exit_code == 0
    assert (
        "coarse: float32 (None, 4)" in result.stdout and "fine: float32 (None, 6)" in result.stdout
    )
    inp = keras.Input((5,), name="pixels")
    h = keras.layers.Dense(3, name="h")(inp)
    model = keras.Model(
        inp, [keras.layers.Dense(2, name="box")(h), keras.layers.Dense(7, name="marks")(h)]
    )
    model.save(tmp_path / "two.keras")
    for extra in ([], ["--full-load"]):
        result = cli(["inspect", tmp_path / "two.keras", *extra])
        assert result.exit_code == 0, result.stderr
        assert "inputs: pixels (None, 5)" in result.stdout
        assert "outputs: box (None, 2), marks (None, 7)" in result.stdout


def test_a_keras_model_with_two_outputs_finetunes_on_one(tmp_path, train_npz):
    import keras

    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(6, activation="relu", name="h")(inp)
    keras.Model(inp, [keras.layers.Dense(2, name="a")(h), keras.layers.Dense(5, name="b")(h)]).save(
        tmp_path / "two.keras"
    )
    result = cli(
        [
            "finetune",
            tmp_path / "two.keras",
            "--output-key",
            "b",
            "--data",
            train_npz,
            "--epochs",
            "1",
            "-o",
            tmp_path / "t.keras",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["cut"] == "h"


def test_a_multi_input_savedmodel_is_refused_with_its_inputs_named(tmp_path):
    import tensorflow as tf

    class TwoInputs(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec((None, 3), tf.float32, name="audio"),
                tf.TensorSpec((None, 2), tf.float32, name="extra"),
            ]
        )
        def serve(self, audio, extra):
            return {"out": tf.concat([audio, extra], axis=1)}

    module = TwoInputs()
    tf.saved_model.save(
        module, str(tmp_path / "two_in"), signatures={"serving_default": module.serve}
    )
    x = np.zeros((4, 3), "float32")
    save_npz(tmp_path / "d.npz", x, np.zeros(4, "int64"))
    result = cli(["check", tmp_path / "two_in", "--data", tmp_path / "d.npz"])
    assert result.exit_code != 0
    assert "takes 2 inputs (audio: float32 (None, 3), extra: float32 (None, 2))" in result.stderr


def test_a_cache_of_one_output_is_refused_for_another(two_output_savedmodel, train_npz, tmp_path):
    cache = tmp_path / "f.h5"
    args = ["--data", train_npz]
    result = cli(
        ["cache-features", two_output_savedmodel, *args, "--output-key", "fine", "-o", cache]
    )
    assert result.exit_code == 0, result.stderr
    result = cli(
        [
            "finetune",
            two_output_savedmodel,
            *args,
            "--output-key",
            "coarse",
            "--features",
            cache,
            "--epochs",
            "1",
            "-o",
            tmp_path / "t.keras",
        ]
    )
    assert result.exit_code != 0 and "architecture up to the taps differs" in result.stderr
    assert "--output-key coarse" in result.stderr  # the rebuild hint keeps the output
