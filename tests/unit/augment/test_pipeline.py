"""The augmenter: each Keras layer runs in graph mode, keeps shapes, is seeded, and stays out
of inference; flat rows as images; mixup/cutmix labels; augmented views."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.augment.pipeline import build_augmenter, infer_value_range, views
from reuse.augment.spec import NAMES
from reuse.core.errors import SpecError, UsageError

N, H, W = 8, 10, 10


def _images(channels=3, scale=1.0, dtype="float32", seed=0):
    """Smooth images with structure (a gradient plus noise), so every geometric op shows."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 1, H * W).reshape(1, H, W, 1)
    x = 0.6 * grid + 0.4 * rng.random((N, H, W, channels))
    return (x * scale).astype(dtype)


def _labels():
    return np.arange(N) % 3


def _graph(augmenter, x, y=None):
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *x.shape[1:]), x.dtype)]
    if y is None:
        fn = tf.function(lambda xb: augmenter(xb, training=True)[0], input_signature=signature)
        return fn(x).numpy(), None
    signature.append(tf.TensorSpec((None, *y.shape[1:]), y.dtype))
    fn = tf.function(lambda xb, yb: augmenter(xb, yb, training=True), input_signature=signature)
    xo, yo = fn(x, y)
    return xo.numpy(), yo.numpy()


@pytest.mark.parametrize("name", NAMES)
def test_each_augmentation_changes_rgb_images_inside_tf_function(name):
    x, y = _images(), _labels()
    augmenter = build_augmenter(name, x.shape[1:], seed=3, num_classes=3)
    xo, yo = _graph(augmenter, x, y)
    assert xo.shape == x.shape and xo.dtype == x.dtype
    assert not np.allclose(xo, x)
    assert np.isfinite(xo).all()
    if name in ("mixup", "cutmix"):
        assert yo.shape == (N, 3)
    else:
        np.testing.assert_array_equal(yo, y)


@pytest.mark.parametrize("name", ["jitter", "brightness", "contrast", "erase", "noise", "elastic"])
def test_value_range_255_on_grayscale_float64(name):
    x = _images(channels=1, scale=255.0, dtype="float64")
    augmenter = build_augmenter(name, x.shape[1:], value_range=infer_value_range(x), seed=1)
    xo, _ = augmenter(x)  # eager
    xo = np.asarray(xo)
    assert xo.shape == x.shape and xo.dtype == np.float64
    assert not np.allclose(xo, x)
    assert xo.max() > 2  # still on the 0-255 scale
    assert np.abs(xo - x).mean() > 0.1  # not a 0-1-scale change lost in 255


def test_integer_images_come_back_float32():
    x = (_images() * 255).astype("uint8")
    xo, _ = build_augmenter("shift", x.shape[1:], value_range=(0, 255))(x)
    assert xo.dtype == "float32" and tuple(xo.shape) == x.shape


def test_flat_rows_with_image_shape():
    x = _images(channels=1).reshape(N, H * W)
    augmenter = build_augmenter("digits,erase", (H * W,), image_shape=(H, W, 1), seed=2)
    xo, _ = _graph(augmenter, x)
    assert xo.shape == x.shape and xo.dtype == x.dtype
    assert not np.allclose(xo, x)


def test_image_augmentation_on_flat_rows_is_refused_with_a_suggestion():
    with pytest.raises(UsageError) as err:
        build_augmenter("shift:0.08,noise", (784,))
    assert "shift" in err.value.message and "(784,)" in err.value.message
    assert "--image-shape 28,28,1" in err.value.hint


def test_image_shape_of_the_wrong_size_is_refused():
    with pytest.raises(UsageError) as err:
        build_augmenter("shift", (784,), image_shape=(28, 28, 3))
    assert "2352" in err.value.message and "784" in err.value.message
    with pytest.raises(UsageError):
        build_augmenter("shift", (784,), image_shape=(784,))


@pytest.mark.parametrize("spec", ["noise:0.1", "mixup"])
def test_noise_and_mixup_work_on_any_input(spec):
    x = np.random.default_rng(0).normal(size=(N, 5)).astype("float32")
    augmenter = build_augmenter(spec, (5,), seed=0, num_classes=3)
    xo, yo = _graph(augmenter, x, _labels())
    assert xo.shape == x.shape
    assert not np.allclose(xo, x)


@pytest.mark.slow
def test_same_seed_same_batches_other_seed_other_batches():
    x = _images()
    spec = "flip,crop,shift,rotate,zoom,contrast,erase,noise"
    a, b, c = (build_augmenter(spec, x.shape[1:], seed=s) for s in (7, 7, 8))
    first_a, first_b, first_c = (_graph(m, x)[0] for m in (a, b, c))
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.allclose(first_a, first_c)
    second_a, second_b = _graph(a, x)[0], _graph(b, x)[0]
    np.testing.assert_array_equal(second_a, second_b)
    assert not np.allclose(first_a, second_a)  # the stream moves on between batches


def test_training_false_is_identity():
    x, y = _images(), _labels()
    augmenter = build_augmenter("natural,erase,noise,mixup", x.shape[1:], num_classes=3)
    xo, yo = augmenter(x, y, training=False)
    assert xo is x and yo is y


def test_empty_spec_is_identity():
    x = _images()
    xo, _ = build_augmenter("none", x.shape[1:])(x, training=True)
    assert xo is x


@pytest.mark.parametrize("name", ["mixup:0.4", "cutmix"])
@pytest.mark.parametrize("one_hot", [False, True])
def test_mixed_labels_are_probabilities(name, one_hot):
    x, y = _images(), _labels()
    if one_hot:
        y = np.eye(3, dtype="float32")[y]
    augmenter = build_augmenter(name, x.shape[1:], seed=5, num_classes=None if one_hot else 3)
    assert augmenter.soft_labels
    _, yo = _graph(augmenter, x, y)
    assert yo.shape == (N, 3) and yo.dtype == np.float32
    np.testing.assert_allclose(yo.sum(axis=1), 1.0, atol=1e-5)
    assert (yo >= 0).all()
    assert not np.allclose(yo, np.eye(3)[_labels()])  # some rows were actually mixed


def test_mixup_needs_labels_and_classes():
    x = _images()
    augmenter = build_augmenter("mixup", x.shape[1:])
    with pytest.raises(UsageError, match="num_classes"):
        augmenter(x, _labels())
    with pytest.raises(UsageError, match="labels"):
        augmenter(x)
    np.testing.assert_array_equal(
        np.asarray(build_augmenter("mixup", x.shape[1:], num_classes=3).one_hot(_labels())),
        np.eye(3)[_labels()],
    )


def test_hand_built_spec_is_checked():
    from reuse.augment.spec import AugmentSpec

    with pytest.raises(SpecError, match="give one"):
        build_augmenter(AugmentSpec(mixup=0.2, cutmix=1.0), (H, W, 3))
    with pytest.raises(SpecError, match="shift"):
        build_augmenter(AugmentSpec(shift=3.0), (H, W, 3))


def test_bad_value_range_is_refused():
    with pytest.raises(UsageError, match="value_range"):
        build_augmenter("brightness", (H, W, 3), value_range=(1, 1))


def test_infer_value_range():
    assert infer_value_range(np.array([0.0, 0.5, 1.0])) == (0.0, 1.0)
    assert infer_value_range(np.array([0, 17, 255], dtype="uint8")) == (0.0, 255.0)
    assert infer_value_range(np.array([-2.0, 3.0])) == (-2.0, 3.0)
    assert infer_value_range(np.zeros((0, 3))) == (0.0, 1.0)


def test_views_shape_determinism_and_batching():
    x = _images(channels=1).reshape(N, H * W)
    out = views(x, "digits", 3, seed=4, image_shape=(H, W, 1), batch_size=3)
    assert out.shape == (3, N, H * W) and out.dtype == np.float32
    assert not np.allclose(out[0], out[1])
    assert not np.allclose(out[0], x)
    again = views(x, "digits", 3, seed=4, image_shape=(H, W, 1), batch_size=3)
    np.testing.assert_array_equal(out, again)
    assert views(x, "digits", 0, image_shape=(H, W, 1)).shape == (0, N, H * W)


def test_views_of_uint8_images_infer_the_255_range():
    x = (_images() * 255).astype("uint8")
    out = views(x, "brightness:0.5", 1, seed=0)
    assert out.dtype == np.float32 and out.max() > 2


def test_views_refuse_mixup_and_empty_specs():
    x = _images()
    with pytest.raises(SpecError) as err:
        views(x, "digits,mixup", 2)
    assert "shift:0.08,rotate:0.04,zoom:0.08" in err.value.hint
    with pytest.raises(SpecError):
        views(x, "none", 2)


def test_views_of_mixup_alone_do_not_advise_making_views_with_none():
    """`mixup` has no per-row part: the hint used to say "make the views with `none`", a spec
    that views refuse as empty."""
    with pytest.raises(SpecError) as err:
        views(_images(), "mixup", 2)
    assert "`none`" not in err.value.hint
    assert views(_images(), err.value.hint.split("`")[1], 1).shape[0] == 1


@pytest.mark.slow
def test_runs_in_a_tf_range_loop_like_the_training_steps():
    """The augmenter inside an AutoGraph loop over batches (as fit_arrays' train steps):
    it traces, and a fresh augmenter with the same seed gives the same sums."""
    import tensorflow as tf

    x_all = tf.constant(_images(channels=1).reshape(N, H * W))
    y_all = tf.constant(_labels())

    def run(seed):
        augmenter = build_augmenter(
            "digits,erase,mixup", (H * W,), image_shape=(H, W, 1), seed=seed, num_classes=3
        )

        @tf.function
        def steps(count):
            total = tf.constant(0.0)
            for step in tf.range(count):
                rows = tf.range(step * 4, step * 4 + 4) % N
                xb, yb = augmenter(tf.gather(x_all, rows), tf.gather(y_all, rows))
                total += tf.reduce_sum(xb) + tf.reduce_sum(yb)
            return total

        return [float(steps(tf.constant(3))) for _ in range(2)]

    first = run(11)
    assert first == run(11)
    assert first[0] != first[1]
    assert first != run(12)
