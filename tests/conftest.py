"""Shared fixtures: tiny models saved in tmp_path, and the MNIST location (tests skip without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def _reset_quiet():
    from reuse.core import report

    report.set_quiet(False)
    yield


@pytest.fixture
def mlp_path(tmp_path):
    from tests.helpers import mlp

    path = tmp_path / "base.keras"
    mlp().save(path)
    return path


@pytest.fixture
def mnist_dir():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST files not present (../shared/data/mnist)")
    return MNIST_DIR
