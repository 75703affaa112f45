"""Augmentation while fine-tuning: training batches only, seeded, never inside the saved model."""

import json

import numpy as np
import pytest

from tests.helpers import cli, mlp, save_npz


def _images(n=36, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.uniform(0, 1, size=(n, 8, 8, 1)).astype("float32")
    x[:, :4, :4] += y[:, None, None, None] * 0.5  # a learnable pattern per class
    return np.clip(x, 0, 1), y.astype("int64")


def _flat_base():
    return mlp(n_in=64, hidden=2, units=8)


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _tune(augment, seed=3, **extra):
    import reuse

    x, y = _images()
    return reuse.finetune(
        _flat_base(),
        (x.reshape(len(x), -1), y),
        val=(x.reshape(len(x), -1)[:9], y[:9]),
        epochs=3,
        seed=seed,
        augment=augment,
        image_shape=(8, 8, 1) if augment else None,
        **extra,
    )


@pytest.mark.slow
def test_same_seed_same_weights_and_augmentation_changes_training():
    a = _tune("shift:0.1,rotate:0.05")
    b = _tune("shift:0.1,rotate:0.05")
    plain = _tune(None)
    for wa, wb in zip(_weights(a.model), _weights(b.model), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(
        not np.array_equal(wa, wp)
        for wa, wp in zip(_weights(a.model), _weights(plain.model), strict=True)
    )


@pytest.mark.slow
def test_saved_model_holds_no_augmentation_and_predicts_like_its_weights(tmp_path):
    import keras

    result = _tune("digits,noise:0.05")
    saved = result.save(tmp_path / "t.keras")
    reloaded = keras.models.load_model(saved.model)
    classes = {type(layer).__name__ for layer in reloaded.layers}
    assert not any(c.startswith("Random") or c in ("GaussianNoise", "MixUp") for c in classes)
    x, _ = _images(n=12, seed=5)
    rows = x.reshape(len(x), -1)
    np.testing.assert_allclose(
        reloaded.predict(rows, verbose=0), result.model.predict(rows, verbose=0), rtol=0, atol=0
    )
    report = json.loads((tmp_path / "t.report.json").read_text())
    assert report["options"]["augment"] == "shift:0.08,rotate:0.04,zoom:0.08,noise:0.05"


def test_mixup_trains_on_soft_labels_and_validates_on_clean_rows():
    result = _tune("mixup:0.2")
    losses = [row["loss"] for row in result.history]
    assert all(np.isfinite(losses))
    assert "val_loss" in result.history[-1]


def test_frozen_reused_layers_stay_bit_identical_under_augmentation():
    import reuse

    x, y = _images()
    base = _flat_base()
    base.get_layer("hidden1").trainable = False
    before = _weights(base.get_layer("hidden1"))
    result = reuse.finetune(
        base, (x.reshape(len(x), -1), y), epochs=2, seed=0, augment="shift", image_shape=(8, 8, 1)
    )
    after = _weights(result.model.get_layer("hidden1"))
    for w0, w1 in zip(before, after, strict=True):
        np.testing.assert_array_equal(w0, w1)


def test_cli_image_augmentation_on_flat_rows_needs_image_shape(tmp_path):
    base = tmp_path / "base.keras"
    _flat_base().save(base)
    x, y = _images()
    data = save_npz(tmp_path / "train.npz", x.reshape(len(x), -1), y)
    out = tmp_path / "t.keras"
    result = cli(["finetune", base, "--data", data, "--augment", "rotate", "-o", out])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "--image-shape" in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_image_shape_without_augment_is_refused(tmp_path):
    base = tmp_path / "base.keras"
    _flat_base().save(base)
    x, y = _images()
    data = save_npz(tmp_path / "train.npz", x.reshape(len(x), -1), y)
    out = tmp_path / "t.keras"
    result = cli(["finetune", base, "--data", data, "--image-shape", "8,8,1", "-o", out])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "no --augment was given" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("bad", ["rotat", "shift:2", "flip:sideways"])
def test_cli_bad_augment_spec_is_one_error_before_training(tmp_path, bad):
    base = tmp_path / "base.keras"
    _flat_base().save(base)
    x, y = _images()
    data = save_npz(tmp_path / "train.npz", x.reshape(len(x), -1), y)
    result = cli(["finetune", base, "--data", data, "--augment", bad, "--image-shape", "8,8,1"])
    assert result.exit_code == 2
    assert result.stderr.count("Error:") == 1


def test_cli_records_the_augmentation(tmp_path):
    base = tmp_path / "base.keras"
    _flat_base().save(base)
    x, y = _images()
    data = save_npz(tmp_path / "train.npz", x.reshape(len(x), -1), y)
    result = cli(
        [
            "finetune",
            base,
            "--data",
            data,
            "--augment",
            "shift:0.1",
            "--image-shape",
            "8,8,1",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--json",
            "-o",
            tmp_path / "t.keras",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["augment"] == "shift:0.1" and record["image_shape"] == [8, 8, 1]
