"""reuse.surgery.cuts: valid cut points, skip connections, bottom/top models, nested models, frozen
taps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import frozen_mlp, residual


def test_residual_cut_points_and_refusal():
    from reuse.core.errors import CutError
    from reuse.surgery import cuts

    model = residual()
    assert cuts.valid_cut_points(model) == ["stem", "add", "top", "output"]
    with pytest.raises(CutError) as err:
        cuts.check_cut(model, "branch_b")
    assert "skip connection" in str(err.value)
    assert "below 'stem'" in str(err.value) and "above 'add'" in str(err.value)


def test_top_of_bottom_equals_model():
    from reuse.surgery import cuts

    model = residual()
    x = np.random.default_rng(0).normal(size=(7, 8)).astype("float32")
    stem, add = cuts.bottom_model(model, ["stem", "add"])(x, training=False)
    for cut, feats in (("stem", stem), ("add", add)):
        top = cuts.top_model(model, cut)
        np.testing.assert_allclose(
            np.asarray(top(feats)), np.asarray(model(x)), rtol=1e-6, atol=1e-6
        )


@pytest.mark.slow
def test_nested_application_cuts(tmp_path, nested):
    import keras

    from reuse.core.errors import CutError
    from reuse.surgery import cuts

    model = nested
    graph = cuts.trace(model)
    valid = cuts.valid_cut_points(model, graph)
    base = model.layers[0].name
    assert f"{base}/block_2_add" in valid and "gap" in valid
    assert f"{base}/block_2_project_BN" not in valid
    with pytest.raises(CutError) as err:
        cuts.check_cut(model, "block_2_project_BN", graph)
    assert f"below '{base}/block_1_project_BN'" in str(err.value)
    assert f"above '{base}/block_2_add'" in str(err.value)
    # The default cut runs through the frozen base and the weightless pooling layer.
    assert cuts.frozen_prefix_top(model, graph) == "gap"
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    feats = cuts.bottom_model(model, ["block_2_add"], graph)(x, training=False)
    top = cuts.top_model(model, "block_2_add", graph)
    np.testing.assert_allclose(np.asarray(top(feats)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    # Tracing leaves the model saveable and unchanged.
    model.save(tmp_path / "n.keras")
    again = keras.models.load_model(tmp_path / "n.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


def test_frozen_taps_for_staged_training():
    from reuse.surgery import cuts

    model = frozen_mlp(upto=4)
    assert cuts.frozen_taps(model, ["hidden4", "hidden2", "hidden3"]) == [
        "hidden2",
        "hidden3",
        "hidden4",
    ]
    model.get_layer("hidden4").trainable = True
    assert cuts.frozen_taps(model, ["hidden2", "hidden3", "hidden4"]) == ["hidden2", "hidden3"]
    model.get_layer("hidden1").trainable = True
    assert cuts.frozen_taps(model, ["hidden2", "hidden3"]) == []


def test_top_of_a_sequential_model():
    """top_model on a Sequential (docs/cache.md's Python example, on frozen.keras) called
    the layers below the cut with None ("Inputs to a layer should be tensors")."""
    from reuse.surgery import cuts
    from tests.helpers import mlp

    model = mlp(hidden=3)
    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    feats = cuts.bottom_model(model, ["hidden2"])(x, training=False)
    top = cuts.top_model(model, "hidden2")
    assert top.input_shape == (None, 6)
    np.testing.assert_allclose(np.asarray(top(feats)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)
