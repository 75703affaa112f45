"""A model tuned on a SavedModel block, run as a user runs it (relative paths, real processes),
reloads from another working directory and after its project folder moves, without --unsafe;
without its SavedModel the error says where it looked."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import classification_data, last_record, save_npz, shell

pytestmark = pytest.mark.slow


@pytest.fixture
def two_output_savedmodel(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="h")(inp)
    outputs = {
        "coarse": keras.layers.Dense(4, name="coarse")(h),
        "fine": keras.layers.Dense(6, name="fine")(h),
    }
    folder = tmp_path / "sm" / "two_outputs"
    keras.Model(inp, outputs).export(folder, verbose=False)
    return folder


@pytest.fixture
def train_npz(tmp_path):
    x, y = classification_data(n=60)
    return save_npz(tmp_path / "train.npz", x, y)


def test_tuned_model_on_a_savedmodel_reloads_elsewhere_without_unsafe(
    two_output_savedmodel, train_npz, tmp_path
):
    project = tmp_path / "project"
    (project / "out").mkdir(parents=True)
    shutil.copytree(two_output_savedmodel, project / "base")
    shutil.copy(train_npz, project / "train.npz")
    # Relative paths, run from inside the project.
    result = shell(
        "reuse finetune base --output-key coarse --data train.npz --epochs 2 -o out/tuned.keras --json",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = shell(
        f"reuse evaluate {project / 'out' / 'tuned.keras'} --data {train_npz} --json", cwd=other
    )
    assert result.returncode == 0, result.stderr
    acc = last_record(result.stdout)["metrics"]["accuracy"]
    # The project moved as a whole: the SavedModel is found relative to the model file.
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    result = shell(
        f"reuse evaluate {moved / 'out' / 'tuned.keras'} --data {train_npz} --json", cwd=other
    )
    assert result.returncode == 0, result.stderr
    assert last_record(result.stdout)["metrics"]["accuracy"] == pytest.approx(acc)
    # Without its SavedModel the error says where it looked.
    shutil.rmtree(moved / "base")
    result = shell(f"reuse evaluate {moved / 'out' / 'tuned.keras'} --data {train_npz}", cwd=other)
    assert result.returncode != 0 and "SavedModel block cannot be found" in result.stderr
