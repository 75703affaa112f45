"""`reuse tune` as real processes: a search stopped by Ctrl-C resumes where it stopped, and two
processes sharing one SQLite study split its trials between them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

optuna = pytest.importorskip("optuna")


def _command(tmp: Path, path, train, valid, out: str, db: Path, trials: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reuse",
        "tune",
        str(path),
        "--data",
        str(train),
        "--val",
        str(valid),
        "--trials",
        str(trials),
        "--coarse-epochs",
        "2",
        "--fine",
        "1",
        "--fine-epochs",
        "2",
        "--seed",
        "0",
        "--storage",
        f"sqlite:///{db}",
        "-o",
        str(tmp / out),
        "--json",
    ]


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.update(extra)
    return env


def _default_sigint() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and an
    # ignored signal stays ignored across exec: give the child Python's Ctrl-C back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _coarse(db: Path):
    return optuna.load_study(study_name="reuse-tune", storage=f"sqlite:///{db}").get_trials()


def test_a_search_stopped_by_ctrl_c_resumes_where_it_stopped(finetune_task, tmp_path):
    path, train, valid = finetune_task
    db = tmp_path / "resume.db"
    command = _command(tmp_path, path, train, valid, "best.json", db, trials=4)
    log = tmp_path / "first.err"
    with open(log, "w") as err:
        first = subprocess.Popen(
            command,
            cwd=tmp_path,
            # 3 s per epoch: a 2-epoch trial outlasts the 1.5 s wait below even when training
            # itself is fast (a 1 s delay let trial 2 finish first on a quiet machine).
            env=_env(REUSE_TEST_EPOCH_DELAY="3"),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=_default_sigint,
        )
        deadline = time.time() + 400
        while "coarse trial 1:" not in log.read_text() and time.time() < deadline:
            assert first.poll() is None, log.read_text()
            time.sleep(0.5)
        time.sleep(1.5)  # inside trial 2
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130, log.read_text()[-2000:]
    assert "interrupted; the finished trials are kept in sqlite:///" in log.read_text()
    assert not (tmp_path / "best.json").exists()
    before = {t.number: t.state.name for t in _coarse(db)}
    assert before[0] == before[1] == "COMPLETE" and "FAIL" in before.values()

    second = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming: 1 interrupted trial(s) queued again" in second.stderr
    trials = _coarse(db)
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 4  # the study's total, not 4 more
    retried = [t for t in trials if "retry_of" in t.user_attrs]
    assert len(retried) == 1
    failed = trials[retried[0].user_attrs["retry_of"]]
    assert failed.params == retried[0].params  # the interrupted trial ran again, same values
    for number in (0, 1):  # finished trials were not run again
        assert trials[number].datetime_complete < retried[0].datetime_start
    record = json.loads(second.stdout.splitlines()[-1])
    assert json.loads((tmp_path / "best.json").read_text())["finetune"] == record["best"]


def test_two_processes_share_one_study(finetune_task, tmp_path):
    path, train, valid = finetune_task
    db = tmp_path / "shared.db"
    runs = [
        subprocess.Popen(
            _command(tmp_path, path, train, valid, f"best{i}.json", db, trials=6),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-2000:]
    trials = _coarse(db)
    assert len([t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]) == 6  # not 12
    by_process = [
        {
            int(line.split()[2].rstrip(":"))
            for line in err.splitlines()
            if line.startswith("coarse trial ")
        }
        for _, err in outputs
    ]
    assert by_process[0] and by_process[1]  # both worked
    assert not by_process[0] & by_process[1]  # on different trials
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params)  # seeded per trial number: no point drawn twice
    records = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert records[0]["best"] == records[1]["best"]  # one study, one answer
