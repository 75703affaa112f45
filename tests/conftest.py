"""Shared fixtures: tiny models and data saved in tmp_path, weight files of every format, and the
MNIST location (tests skip without it). They serve tests/unit, tests/cli and tests/e2e alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import classification_data, frozen_mlp, mlp, nested_application, save_npz

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MNIST_DIR = Path(
    os.environ.get(
        "REUSE_MNIST", Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
    )
)


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e is slow (`make test-slow`; CI runs both)."""
    for item in items:
        if "/tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _reset_quiet():
    from reuse.core import report

    report.set_quiet(False)
    yield


@pytest.fixture
def mlp_path(tmp_path):
    """mlp() saved as base.keras."""
    path = tmp_path / "base.keras"
    mlp().save(path)
    return path


@pytest.fixture
def mnist_dir():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST files not present (../shared/data/mnist)")
    return MNIST_DIR


# --- transfer tasks: a partly frozen MLP saved to disk, with .npz data of 3 classes ------------


@pytest.fixture
def finetune_task(tmp_path):
    """(path, train, valid): an MLP frozen up to hidden3, saved to disk; 90 train and 30 valid
    rows of 3 classes in .npz files."""
    model = mlp(n_in=8, hidden=5, units=12, n_out=4, seed=1)
    for name in ("hidden1", "hidden2", "hidden3"):
        model.get_layer(name).trainable = False
    path = tmp_path / "base.keras"
    model.save(path)
    x, y = classification_data(n=120, n_in=8, n_classes=3, seed=2)
    train = save_npz(tmp_path / "train.npz", x[:90], y[:90])
    valid = save_npz(tmp_path / "valid.npz", x[90:], y[90:])
    return path, train, valid


@pytest.fixture
def frozen_task(tmp_path):
    """(path, train, valid): an MLP with hidden1..hidden5 frozen, 100 train and 50 valid rows."""
    model = mlp(n_in=8, hidden=5, units=12, n_out=4, seed=3)
    for i in range(1, 6):
        model.get_layer(f"hidden{i}").trainable = False
    path = tmp_path / "base.keras"
    model.save(path)
    x, y = classification_data(n=150, n_in=8, n_classes=3, seed=4)
    train = save_npz(tmp_path / "train.npz", x[:100], y[:100])
    valid = save_npz(tmp_path / "valid.npz", x[100:], y[100:])
    return path, train, valid


@pytest.fixture(scope="module")
def tuning_task(tmp_path_factory):
    """(folder, path, train, valid), one per test module: an MLP frozen up to hidden2, saved to
    disk; 60 train and 30 valid rows of 3 classes in .npz files."""
    tmp = tmp_path_factory.mktemp("tuning")
    model = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1)
    for name in ("hidden1", "hidden2"):
        model.get_layer(name).trainable = False
    path = tmp / "base.keras"
    model.save(path)
    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    train = save_npz(tmp / "train.npz", x[:60], y[:60])
    valid = save_npz(tmp / "valid.npz", x[60:], y[60:])
    return tmp, path, train, valid


# --- feature caches -------------------------------------------------------------------------


@pytest.fixture
def frozen_path(tmp_path):
    """frozen_mlp() (hidden1..hidden3 frozen) saved as frozen.keras."""
    path = tmp_path / "frozen.keras"
    frozen_mlp().save(path)
    return path


@pytest.fixture
def data_path(tmp_path):
    """100 rows of classification_data() saved as d.npz."""
    x, y = classification_data(100)
    return save_npz(tmp_path / "d.npz", x, y)


@pytest.fixture(scope="module")
def nested():
    """nested_application(), built once per module."""
    return nested_application()


# --- weight-only files ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def weight_files(tmp_path_factory):
    """One weight file per source format (tests/weight_sources.py), written once: read-only."""
    from tests.weight_sources import write_weight_files

    return write_weight_files(tmp_path_factory.mktemp("weights"))
