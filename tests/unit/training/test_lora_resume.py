"""`finetune --lora` with `--checkpoint-dir` and `--resume`: a run stopped after an epoch and
resumed ends with the weights and optimizer state of an uninterrupted one; the base kernels
stay bit-identical; a resume with another rank is refused. (The CLI-level SIGKILL test is in
tests/e2e/test_lora_precision_distribute.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reuse.core.errors import UsageError
from tests.helpers import classification_data, mlp

pytestmark = pytest.mark.slow  # three fine-tuning runs: ~18 s on 2 shared cores

EPOCHS = 3


class _Killed(Exception):
    """Raised by a callback to stop a run the way a kill would: mid-run, checkpoint on disk."""


def _run(checkpoint_dir=None, *, resume=False, stop_after=None, rank=2):
    from reuse.training.callbacks import EpochHook
    from reuse.training.finetune import finetune

    def stop(epoch):
        if stop_after is not None and epoch + 1 == stop_after:
            raise _Killed  # before this epoch's checkpoint: the last one on disk is epoch - 1

    x, y = classification_data(n=90, n_in=8, n_classes=3, seed=2)
    return finetune(
        mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1),
        (x[:60], y[:60]),
        val=(x[60:], y[60:]),
        lora=rank,
        lora_layers="hidden[34]",
        epochs=EPOCHS,
        seed=0,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        callbacks=[EpochHook(stop)],
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(uninterrupted result, resumed result, checkpoint folder, epoch the resume started at)."""
    ck = tmp_path_factory.mktemp("lora_ck")
    whole = _run()
    with pytest.raises(_Killed):
        _run(ck, stop_after=2)
    started_at = json.loads((ck / "state.json").read_text())["global_epoch"]
    resumed = _run(ck, resume=True)
    return whole, resumed, ck, started_at


def test_resumed_lora_run_equals_the_uninterrupted_one(runs):
    whole, resumed, _, started_at = runs
    assert 0 < started_at < EPOCHS  # it really stopped midway
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in whole.history]
    names = [v.path for v in whole.model.weights]
    assert any("lora_kernel_b" in n for n in names)
    for name, a, b in zip(
        names, whole.model.get_weights(), resumed.model.get_weights(), strict=True
    ):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5, err_msg=name)


def test_base_kernels_stay_bit_identical_after_a_resume(runs):
    _, resumed, _, _ = runs
    base = mlp(n_in=8, hidden=4, units=12, n_out=4, seed=1)
    for name in ("hidden1", "hidden2", "hidden3", "hidden4"):
        layer = resumed.model.get_layer(name)
        kernel = layer._kernel if getattr(layer, "lora_enabled", False) else layer.kernel
        np.testing.assert_array_equal(np.asarray(kernel), base.get_layer(name).get_weights()[0])
        np.testing.assert_array_equal(np.asarray(layer.bias), base.get_layer(name).get_weights()[1])
    assert np.abs(np.asarray(resumed.model.get_layer("hidden3").lora_kernel_b)).max() > 0


def test_the_adapters_optimizer_state_is_checkpointed_and_restored(runs):
    from reuse.training import checkpoints

    whole, resumed, ck, _ = runs
    state = json.loads((ck / "state.json").read_text())
    saved = checkpoints.load_arrays(ck / state["optimizer"])
    # Adam's moments of every adapter A (12x2) and B (2x12) are in the checkpoint.
    shapes = [a.shape for a in saved]
    assert shapes.count((12, 2)) == 2 * 2 and shapes.count((2, 12)) == 2 * 2
    opt_whole, opt_resumed = whole.model.optimizer, resumed.model.optimizer
    assert int(opt_resumed.iterations) == int(opt_whole.iterations)
    for a, b in zip(opt_whole.variables, opt_resumed.variables, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5, rtol=1e-5)


def test_resume_with_another_rank_is_refused(runs):
    _, _, ck, _ = runs
    with pytest.raises(UsageError, match=r"other options \(lora: 2, now 4\)"):
        _run(ck, resume=True, rank=4)
