"""The study machinery of `reuse tune`, without training: trials counted over the whole study,
interrupted trials queued again, a study refused to another search, the storage by default."""

from __future__ import annotations

import pytest

from reuse.core.errors import UsageError
from reuse.tune import study as studies

optuna = pytest.importorskip("optuna")


def _study(tmp_path, name="s"):
    storage = studies.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    return studies.open_study(storage, name, "minimize", optuna.samplers.RandomSampler(seed=0))


def _objective(trial):
    return trial.suggest_float("x", 0, 1)


def test_trials_are_counted_over_the_study_so_a_second_run_adds_none(tmp_path):
    study = _study(tmp_path)
    studies.run_until(study, _objective, 3)
    assert studies.counts(study).done == 3
    again = _study(tmp_path)  # another process, or the same command run again
    studies.run_until(again, _objective, 3)
    assert len(again.get_trials()) == 3
    studies.run_until(again, _objective, 5)  # a larger total runs only what is missing
    assert len(again.get_trials()) == 5


def test_an_interrupted_trial_is_queued_again_once_with_its_values(tmp_path):
    study = _study(tmp_path)

    def stopped(trial):
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("config", {"x": 1})
        trial.set_user_attr("interrupted", True)
        raise KeyboardInterrupt

    studies.run_until(study, _objective, 1)
    with pytest.raises(KeyboardInterrupt):
        studies.run_until(study, stopped, 2)
    assert studies.requeue_interrupted(study) == 1
    assert studies.requeue_interrupted(study) == 0  # once
    studies.run_until(study, _objective, 2)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[2].params == trials[1].params and trials[2].user_attrs["retry_of"] == 1
    assert trials[2].user_attrs["config"] == {"x": 1}


def test_queued_only_runs_nothing_new(tmp_path):
    study = _study(tmp_path)
    study.enqueue_trial({"x": 0.5})
    studies.run_until(study, _objective, 5, queued_only=True)
    assert [t.params for t in study.get_trials()] == [{"x": 0.5}]


def test_a_study_made_for_another_search_is_refused(tmp_path):
    study = _study(tmp_path)
    studies.check_setup(study, {"data": "a", "metric": "val_loss"})
    studies.check_setup(_study(tmp_path), {"data": "a", "metric": "val_loss"})  # same: fine
    with pytest.raises(UsageError, match="it differs in: data"):
        studies.check_setup(_study(tmp_path), {"data": "b", "metric": "val_loss"})


def test_values_shared_by_the_processes_are_computed_once(tmp_path):
    calls = []
    study = _study(tmp_path)
    assert studies.shared_value(study, "lr", lambda: calls.append(1) or {"adam": 0.01}) == {
        "adam": 0.01
    }
    assert studies.shared_value(_study(tmp_path), "lr", lambda: calls.append(1) or {}) == {
        "adam": 0.01
    }
    assert calls == [1]


def test_the_default_storage_sits_beside_the_output(tmp_path):
    assert studies.default_storage(tmp_path / "runs" / "best.json") == (
        f"sqlite:///{tmp_path / 'runs' / 'best.study.db'}"
    )


def test_a_bad_storage_url_is_one_usage_error():
    with pytest.raises(UsageError, match="--storage nodb://x: cannot open it"):
        studies.open_storage("nodb://x")


def test_a_requested_stop_stops_before_the_next_trial(tmp_path):
    study = _study(tmp_path)
    studies.request_stop()  # as the Ctrl-C / SIGTERM handler of `reuse tune` does
    with pytest.raises(KeyboardInterrupt):
        studies.run_until(study, _objective, 3)
    assert study.get_trials() == []
    studies.run_until(study, _objective, 1)  # the request is used up
    assert len(study.get_trials()) == 1
