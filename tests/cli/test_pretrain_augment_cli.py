"""`reuse pretrain autoencoder|pairs --augment SPEC [--image-shape H,W,C]`: finetune's grammar,
checks and errors; the record carries the spec."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cli, last_record, mlp, save_npz


@pytest.fixture
def flat(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(36) % 3
    x = rng.random((36, 64)).astype("float32")
    return save_npz(tmp_path / "flat.npz", x, y)


def _error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["autoencoder", "pairs"])
def test_an_image_op_on_flat_rows_gets_finetune_s_error(tmp_path, flat, kind):
    base = tmp_path / "base.keras"
    mlp(n_in=64, hidden=1, units=4).save(base)
    tuned = cli(
        ["finetune", base, "--data", flat, "--augment", "rotate", "-o", tmp_path / "t.keras"]
    )
    pretrained = cli(["pretrain", kind, "--data", flat, "--augment", "rotate", "--epochs", "1"])
    assert pretrained.exit_code == tuned.exit_code != 0
    assert _error(pretrained) == _error(tuned)
    assert "--image-shape" in _error(pretrained)
    assert not list(tmp_path.glob("*.pairs.keras")) and not list(
        tmp_path.glob("*.autoencoder.keras")
    )


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--augment", "spin"], "spin"),
        (["--augment", "mixup"], "pretrain augments single rows"),
        (["--augment", "shift", "--image-shape", "8,8"], "--image-shape must be H,W,C"),
    ],
)
def test_bad_augment_options_are_usage_errors(flat, extra, words):
    result = cli(["pretrain", "autoencoder", "--data", flat, *extra])
    assert result.exit_code == 2
    assert words in _error(result)


@pytest.mark.parametrize("kind", ["autoencoder", "pairs"])
def test_the_record_carries_the_augmentation(tmp_path, flat, kind):
    out = tmp_path / f"{kind}.keras"
    pairs = ["--pairs", "40"] if kind == "pairs" else []
    result = cli(
        ["pretrain", kind, "--data", flat, "--layers", "8", "--epochs", "1", *pairs]
        + ["--arch", "dense", "--augment", "zoom:0.1,shift", "--image-shape", "8,8,1"]
        + ["--seed", "5", "-o", out, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    record = last_record(result.stdout)
    assert record["augment"] == "shift:0.1,zoom:0.1"  # canonical, as finetune writes it
    assert record["image_shape"] == [8, 8, 1] and record["seed"] == 5
    assert record["cut_finetune"] == "hidden1"  # dense: --image-shape served --augment only
