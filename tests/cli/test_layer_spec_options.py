"""`finetune --head` and `import-weights --arch` on the command line: one grammar, the same
aliases, documented in both --help texts."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.surgery.layer_spec import ACTIVATION_ALIASES, KIND_ALIASES
from tests.helpers import classification_data, cli, last_record, mlp, save_npz

ALIASED = "dense:6:silu,bn,alpha_dropout:0.1,noise:0.1,dense:6:leakyrelu,activation:identity,batchnormalization,gaussian_noise:0.1,dense:3:none"


def _flat(text: str) -> str:
    """Help text without whitespace: the wrapping may break lines anywhere."""
    return "".join(text.split())


def test_both_help_texts_document_every_alias():
    for command, option in (("finetune", "--head"), ("import-weights", "--arch")):
        result = cli([command, "--help"])
        assert result.exit_code == 0
        text = _flat(result.stdout)
        assert option in text
        for alias, canonical in {**KIND_ALIASES, **ACTIVATION_ALIASES}.items():
            assert alias in text, (command, alias)
            assert canonical in text
        assert "name=NAME" in text


def test_arch_takes_the_aliases(tmp_path):
    np.savez(tmp_path / "w.npz", **{"dense_1/kernel": np.ones((8, 6), "float32")})
    out = tmp_path / "o.keras"
    result = cli(["import-weights", tmp_path / "w.npz", "--arch", "input:8," + ALIASED, "-o", out])
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["import"]["counts"]["assigned"] == 1
    import keras

    model = keras.models.load_model(out)
    classes = [type(layer).__name__ for layer in model.layers[1:]]  # after the InputLayer
    assert classes == [
        "Dense",
        "BatchNormalization",
        "AlphaDropout",
        "GaussianNoise",
        "Dense",
        "Activation",
        "BatchNormalization",
        "GaussianNoise",
        "Dense",
    ]
    assert model.get_layer("dense_1").activation.__name__ == "silu"
    assert np.array_equal(model.get_layer("dense_1").kernel.numpy(), np.ones((8, 6)))


@pytest.mark.slow
def test_head_takes_the_aliases(tmp_path):
    base = tmp_path / "base.keras"
    mlp(n_in=8, hidden=2, units=6, n_out=3).save(base)
    x, y = classification_data(n=30, n_in=8, n_classes=3)
    train = save_npz(tmp_path / "train.npz", x, y)
    out = tmp_path / "tuned.keras"
    result = cli(
        [
            "finetune",
            base,
            "--data",
            train,
            "--head",
            ALIASED.replace("dense:3:none", "dense:3:softmax"),
            "--epochs",
            "1",
            "--seed",
            "0",
            "-o",
            out,
        ]
    )
    assert result.exit_code == 0, result.stderr
    import keras

    model = keras.models.load_model(out)
    head = [layer for layer in model.layers if layer.name.startswith("head_")]
    assert [layer.name for layer in head] == [
        "head_dense_1",
        "head_batchnorm_1",
        "head_alphadropout_1",
        "head_gaussiannoise_1",
        "head_dense_2",
        "head_activation_1",
        "head_batchnorm_2",
        "head_gaussiannoise_2",
        "head_dense_3",
    ]
    assert model.get_layer("head_dense_2").activation.__name__ == "leaky_relu"


def test_arch_refuses_a_bad_spec_before_loading_anything(tmp_path):
    result = cli(
        [
            "import-weights",
            tmp_path / "missing.pt",
            "--arch",
            "input:8,dense:3:padding=same",
            "-o",
            tmp_path / "o.keras",
        ]
    )
    assert result.exit_code == 2 and "dense has no option 'padding'" in result.stderr
