"""The one shape rule (reuse.data.shapes): what is adapted, what is refused, and the hints."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from reuse.core.errors import DataError
from reuse.data import Dataset, fit_input_shape, fit_shape
from reuse.data.shapes import fit_model, model_input_shape


def _model(*sample_shape):
    """Stands in for a Keras model: only `model.inputs[0].shape` is read."""
    return SimpleNamespace(inputs=[SimpleNamespace(shape=(None, *sample_shape))])


@pytest.mark.parametrize(
    ("have", "want", "target", "kind"),
    [
        ((8, 8, 3), (8, 8, 3), (8, 8, 3), "none"),
        ((8, 8, 3), (None, None, 3), (8, 8, 3), "none"),
        ((784,), (784,), (784,), "none"),
        ((28, 28), (784,), (784,), "flatten"),
        ((28, 28, 1), (784,), (784,), "flatten"),
        ((4, 4, 3), (None,), (48,), "flatten"),
        ((784,), (28, 28, 1), (28, 28, 1), "unflatten"),
        ((784,), (28, 28), (28, 28), "unflatten"),
        ((28, 28), (28, 28, 1), (28, 28, 1), "add-channel"),
        ((28, 28), (None, None, 1), (28, 28, 1), "add-channel"),
        ((28, 28, 1), (28, 28), (28, 28), "drop-channel"),
        ((1, 28, 28), (28, 28, 1), (28, 28, 1), "move-channel"),
    ],
)
def test_identical_flattened_and_size1_channel_shapes_are_adapted(have, want, target, kind):
    fit = fit_shape(have, want)
    assert (fit.target, fit.kind) == (target, kind)
    assert fit.changes == (kind != "none")
    x = np.arange(2 * int(np.prod(have)), dtype=np.float32).reshape(2, *have)
    out = fit.apply(x)
    assert out.shape == (2, *target)
    # Adapting never moves a value: the rows hold the same numbers in the same order.
    np.testing.assert_array_equal(out.reshape(2, -1), x.reshape(2, -1))


@pytest.mark.parametrize(
    ("have", "want"),
    [
        ((16, 12), (12, 16, 1)),  # same count, but every image would be scrambled
        ((16, 12), (12, 16)),
        ((5,), (8,)),
        ((28, 28), (32, 32, 3)),
        ((784,), (None, None, 1)),  # unknown sizes: no way to unflatten
        ((6, 4, 2), (4, 6, 2)),
    ],
)
def test_other_shapes_are_refused_naming_both(have, want):
    with pytest.raises(DataError) as err:
        fit_shape(have, want, source="d.npz")
    shown_want = "(" + ", ".join(str(d) for d in want) + ("," if len(want) == 1 else "") + ")"
    assert str(err.value).startswith(
        f"d.npz: input shape {have} does not fit the model's input {shown_want}"
    )
    assert "transpose" not in err.value.hint
    assert "--image-size" in err.value.hint


@pytest.mark.parametrize(
    ("have", "want", "axes", "looks"),
    [
        ((3, 8, 8), (8, 8, 3), "(0, 2, 3, 1)", "channels-first"),
        ((3, 8, 8), (None, None, 3), "(0, 2, 3, 1)", "channels-first"),
        ((3, 4, 8, 8), (4, 8, 8, 3), "(0, 2, 3, 4, 1)", "channels-first"),
        ((8, 8, 3), (3, 8, 8), "(0, 3, 1, 2)", "channels-last"),
    ],
)
def test_channel_order_mismatch_is_refused_with_the_transpose(have, want, axes, looks):
    with pytest.raises(DataError, match=r"input shape .* does not fit the model's input") as err:
        fit_shape(have, want)
    assert f"looks {looks}" in err.value.hint
    assert f"np.transpose(x, {axes})" in err.value.hint
    # The hint's transpose really gives what the model wants.
    x = np.zeros((2, *have), dtype=np.float32)
    moved = np.transpose(x, tuple(int(a) for a in axes.strip("()").split(", ")))
    assert fit_shape(moved.shape[1:], want).kind == "none"


def test_fit_input_shape_reads_the_models_first_input():
    model = _model(8, 8, 3)
    assert model_input_shape(model) == (8, 8, 3)
    assert model_input_shape(_model(None, None, 1)) == (None, None, 1)
    assert fit_model((8, 8, 3), model).kind == "none"
    x = np.zeros((5, 192), dtype=np.float32)
    assert fit_input_shape(x, model).shape == (5, 8, 8, 3)
    same = np.zeros((5, 8, 8, 3), dtype=np.float32)
    assert fit_input_shape(same, model) is same
    with pytest.raises(DataError, match=r"x.npy: input shape \(3, 8, 8\).*\(8, 8, 3\)") as err:
        fit_input_shape(np.zeros((5, 3, 8, 8), dtype=np.float32), model, source="x.npy")
    assert "np.transpose(x, (0, 2, 3, 1))" in err.value.hint


def test_dataset_reshape_for_follows_the_same_rule():
    x = np.arange(4 * 3 * 8 * 8, dtype=np.float32).reshape(4, 3, 8, 8)
    ds = Dataset("cf.npz", x, None, np.arange(4))
    with pytest.raises(DataError, match=r"cf.npz: input shape \(3, 8, 8\)") as err:
        ds.reshape_for((None, 8, 8, 3))
    assert "np.transpose(x, (0, 2, 3, 1))" in err.value.hint
    flat = ds.reshape_for((None, 192))
    assert flat.input_shape == (192,)
    np.testing.assert_array_equal(flat.arrays()[0], x.reshape(4, -1))
    images = Dataset("img.npz", np.zeros((2, 16, 12), dtype=np.float32), None, np.arange(2))
    with pytest.raises(DataError, match=r"\(16, 12\) does not fit the model's input \(12, 16, 1\)"):
        images.reshape_for((None, 12, 16, 1))
