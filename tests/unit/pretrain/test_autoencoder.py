"""The autoencoder: what it trains, what the encoder holds, stacked levels, checkpoints, resume."""

from __future__ import annotations

import numpy as np
import pytest

from reuse.core.errors import UsageError
from reuse.pretrain.autoencoder import pretrain_autoencoder


def _rows(n=48, d=12, seed=0):
    """Rows in [0, 1] on a low-dimensional structure (an autoencoder can learn them)."""
    rng = np.random.default_rng(seed)
    code = rng.random((n, 3))
    return (code @ rng.random((3, d)) / 3).astype("float32")


def test_end_to_end_learns_and_the_encoder_holds_no_training_only_layer():
    x = _rows()
    result = pretrain_autoencoder(
        x, layers=(8, 4), epochs=6, seed=0, noise=0.05, dropout=0.1, sparsity=1e-4, lr=0.01
    )
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 6 and losses[-1] < losses[0]
    encoder = result.base
    assert [layer.name for layer in encoder.layers] == ["input", "hidden1", "hidden2"]
    assert encoder.output.shape[1:] == (4,) and result.top == "hidden2"
    # no noise, dropout or L1 penalty in the base: finetune would inherit them
    assert encoder.losses == []
    assert np.allclose(encoder(x, training=True), encoder(x, training=False))


@pytest.mark.slow
def test_images_are_flattened_for_a_dense_encoder_and_kept_for_a_conv_one():
    x = _rows(16, 36).reshape(16, 6, 6)
    dense = pretrain_autoencoder(x, layers=(5,), epochs=1, seed=0, arch="dense").base
    assert dense.input.shape[1:] == (36,)
    conv = pretrain_autoencoder(x, layers=(3, 2), epochs=1, seed=0, arch="conv").base
    assert conv.input.shape[1:] == (6, 6, 1) and conv.output.shape[1:] == (2, 2, 2)
    flat = x.reshape(16, 36)[:, :35]  # 5 x 7: odd sizes are cropped back in the decoder
    odd = pretrain_autoencoder(flat, layers=(2,), epochs=1, seed=0, image_shape="5,7,1")
    assert [layer.name for layer in odd.base.layers][:2] == ["input", "to_image"]
    assert odd.base.output.shape[1:] == (3, 4, 2)


def test_stacked_trains_one_level_per_layer_into_the_same_encoder():
    x = _rows()
    result = pretrain_autoencoder(x, layers=(8, 4), epochs=2, seed=0, mode="stacked")
    assert [s.index for s in result.stages] == [0, 1]
    assert [row["stage"] for row in result.history] == [0, 0, 1, 1]
    # the second level trained on the first level's codes, through the saved encoder's layers
    assert result.base.output.shape[1:] == (4,)
    assert result.extra["mode"] == "stacked"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"layers": "300,,100"}, "--layers"),
        ({"mode": "greedy"}, "--mode"),
        ({"dropout": 1.0}, "--dropout"),
        ({"noise": -1.0}, "--noise"),
        ({"arch": "dense", "image_shape": "6,6,1"}, "--image-shape"),
        ({"image_shape": "5,5,1"}, "holds 25 values"),
        ({"arch": "conv"}, "needs images"),
    ],
)
def test_bad_options_are_refused_with_the_flag_named(kwargs, words):
    with pytest.raises(UsageError, match=words):
        pretrain_autoencoder(_rows(8), epochs=1, **kwargs)


class _StopAt:
    """Raises KeyboardInterrupt at the end of the n-th epoch, before its checkpoint."""

    def __new__(cls, n):
        import keras

        class Stop(keras.callbacks.Callback):
            seen = 0

            def on_epoch_end(self, epoch, logs=None):
                Stop.seen += 1
                if Stop.seen == n:
                    raise KeyboardInterrupt

        return Stop()


@pytest.mark.parametrize(
    "mode, stop_at", [("end-to-end", 2), pytest.param("stacked", 3, marks=pytest.mark.slow)]
)
@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, mode, stop_at):
    x = _rows()
    kw = {"layers": (8, 4), "epochs": 2 if mode == "stacked" else 3, "seed": 1, "mode": mode}
    whole = pretrain_autoencoder(x, **kw).base.get_weights()
    with pytest.raises(KeyboardInterrupt):
        pretrain_autoencoder(x, checkpoint_dir=tmp_path, callbacks=[_StopAt(stop_at)], **kw)
    resumed = pretrain_autoencoder(x, checkpoint_dir=tmp_path, resume=True, **kw)
    for a, b in zip(whole, resumed.base.get_weights(), strict=True):
        assert np.allclose(a, b, atol=1e-6)
    assert len(resumed.history) == (4 if mode == "stacked" else 3)
    with pytest.raises(UsageError, match="other options"):
        pretrain_autoencoder(x, checkpoint_dir=tmp_path, resume=True, **{**kw, "noise": 0.1})


def test_a_terminal_shows_an_epoch_bar_with_the_loss(monkeypatch):
    import io

    from rich.console import Console

    from reuse.core import report

    buffer = io.StringIO()
    monkeypatch.setattr(report, "_console", Console(file=buffer, force_terminal=True, width=120))
    monkeypatch.setattr(report.sys.stderr, "isatty", lambda: True, raising=False)
    pretrain_autoencoder(_rows(16), layers=(4,), epochs=2, seed=0, val_split=0.25)
    text = buffer.getvalue()
    assert "autoencoder" in text and "2/2" in text and "val_loss" in text


def test_resume_with_nothing_to_resume_is_refused_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="--resume needs --checkpoint-dir"):
        pretrain_autoencoder(_rows(8), epochs=1, resume=True)
    with pytest.raises(UsageError, match="no checkpoint in .*level1"):
        pretrain_autoencoder(
            _rows(8), epochs=1, mode="stacked", checkpoint_dir=tmp_path, resume=True
        )
    assert list(tmp_path.iterdir()) == []  # nothing created
