"""reuse.training.checkpoints: save and load a run's state; refuse other options; atomicity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from reuse.core.errors import UsageError
from reuse.training import checkpoints

OPTIONS = {"lr": 0.01, "epochs": 4, "optimizer": "adam", "epochs_hint": 10}


class _Model:
    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.weights = [rng.normal(size=(3, 2)).astype("float32"), np.arange(2, dtype="float32")]

    def get_weights(self):
        return [w.copy() for w in self.weights]


class _Optimizer:
    def __init__(self, step: int):
        self.variables = [np.int64(step), np.full((3, 2), 0.5, "float32")]


def _save(saver, epoch: int, *, best=True, stage_best=True):
    model = _Model(epoch)
    saver.save(
        model=model,
        optimizers=[_Optimizer(epoch * 10)],
        stage=1,
        stage_epochs_done=epoch - 1,
        global_epoch=epoch,
        trainable=["hidden4", "hidden5"],
        results=[{"index": 0, "best_metric": np.float32(0.5), "kept": True}],
        history=[{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)],
        best_metric=np.float32(0.25),
        best_weights=model.get_weights() if best else None,
        stage_best=0.3,
        stage_wait=1,
        stage_best_weights=model.get_weights() if stage_best else None,
    )
    return model


def test_save_then_load_state_round_trip(tmp_path):
    model = _save(checkpoints.Checkpointer(tmp_path / "ckpt", OPTIONS), 2)
    state = checkpoints.load_state(tmp_path / "ckpt", OPTIONS)
    assert (state.stage, state.stage_epochs_done, state.global_epoch) == (1, 1, 2)
    assert state.trainable == ["hidden4", "hidden5"]
    assert state.results == [{"index": 0, "best_metric": 0.5, "kept": True}]
    assert state.history == [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]
    assert state.best_metric == 0.25 and state.stage_best == 0.3 and state.stage_wait == 1
    assert state.options == OPTIONS
    for path in (state.weights, state.best_weights, state.stage_best_weights):
        loaded = checkpoints.load_arrays(path)
        assert all(np.array_equal(a, b) for a, b in zip(loaded, model.weights, strict=True))
    step, slots = checkpoints.load_arrays(state.optimizer)
    assert int(step) == 20 and np.array_equal(slots, np.full((3, 2), 0.5, "float32"))


def test_optional_weights_may_be_absent(tmp_path):
    _save(checkpoints.Checkpointer(tmp_path, OPTIONS), 1, best=False, stage_best=False)
    state = checkpoints.load_state(tmp_path, OPTIONS)
    assert state.best_weights is None and state.stage_best_weights is None


def test_only_the_last_epoch_is_kept(tmp_path):
    saver = checkpoints.Checkpointer(tmp_path, OPTIONS)
    _save(saver, 1)
    _save(saver, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "e2.best.npz",
        "e2.model.npz",
        "e2.optimizer.npz",
        "e2.stage_best.npz",
        "state.json",
    ]


def test_other_options_are_refused(tmp_path):
    _save(checkpoints.Checkpointer(tmp_path, OPTIONS), 1)
    with pytest.raises(UsageError) as info:
        checkpoints.load_state(tmp_path, {**OPTIONS, "lr": 0.1})
    assert "other options (lr: 0.01, now 0.1)" in info.value.message
    assert "--checkpoint-dir" in info.value.hint
    # epochs_hint may differ: a resumed run may be asked for more epochs
    assert checkpoints.load_state(tmp_path, {**OPTIONS, "epochs_hint": 99}).global_epoch == 1


def test_no_checkpoint_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no checkpoint in .* \\(no state.json\\)"):
        checkpoints.load_state(tmp_path, OPTIONS)


def test_every_file_is_written_atomically_and_durably(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _save(checkpoints.Checkpointer(tmp_path / "ckpt", OPTIONS), 1)
    files = [name for name in synced if ".part" in name]
    assert len(files) == 5  # model, optimizer, best, stage best, state.json
    assert files[-1].endswith(".part.json")  # state.json is written last
    assert synced.count("ckpt") == 5  # the folder after each rename


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    saver = checkpoints.Checkpointer(tmp_path, OPTIONS)
    first = _save(saver, 1)
    before = json.loads((tmp_path / "state.json").read_text())
    real = checkpoints._save_arrays
    calls = []

    def disk_full_on_the_optimizer(path, arrays):
        calls.append(path)
        if len(calls) == 2:
            real(path, arrays[:1])  # half written
            raise OSError(28, "No space left on device", str(path))
        real(path, arrays)

    monkeypatch.setattr(checkpoints, "_save_arrays", disk_full_on_the_optimizer)
    with pytest.raises(OSError) as info:
        _save(saver, 2)
    assert info.value.filename == str(tmp_path / "e2.optimizer.npz")  # the target, not the temp
    assert json.loads((tmp_path / "state.json").read_text()) == before
    state = checkpoints.load_state(tmp_path, OPTIONS)
    assert state.global_epoch == 1
    loaded = checkpoints.load_arrays(state.weights)
    assert all(np.array_equal(a, b) for a, b in zip(loaded, first.weights, strict=True))
    assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name]


def test_leftovers_of_a_killed_save_are_removed_by_the_next(tmp_path):
    saver = checkpoints.Checkpointer(tmp_path, OPTIONS)
    (tmp_path / ".e1.model.k3j2.part.model.npz").write_bytes(b"half")
    (tmp_path / ".keepme").write_text("not ours")
    _save(saver, 1)
    names = {p.name for p in tmp_path.iterdir()}
    assert ".e1.model.k3j2.part.model.npz" not in names
    assert ".keepme" in names
