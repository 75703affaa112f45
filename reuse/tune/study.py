"""Where a search lives: Optuna studies in a database that many processes share.

A search is two studies in one storage: `NAME` (the coarse phase) and `NAME.fine` (the fine
phase). The storage is an SQLAlchemy URL (`sqlite:///study.db`, `postgresql://...`): every
`reuse tune` process pointed at it works on the same studies, and a process started again
after an interruption carries on where the last one stopped. What makes that work:

- trials are counted in the database (`Counts`), so N processes run N trials between them, not
  N each; a process whose share is done waits for the others' last trials (`wait_or_run`);
- a trial stopped by Ctrl-C is marked interrupted and queued again on the next start
  (`requeue_interrupted`); one whose process died without a word (killed, machine lost) is
  found by Optuna's heartbeat after a grace period and queued again
  (`RetryHeartbeatStaleTrialCallback`);
- the setup (model, data, validation data, space, metric, epochs) is stored with the study, and
  a process with another setup is refused (`check_setup`), so two searches never mix.

Optuna is imported inside the functions; `require_optuna` says which extra to install.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from reuse.core import exit_codes
from reuse.core.errors import ReuseError, UsageError

# Heartbeat of a running trial (seconds) and how long without one makes it stale.
HEARTBEAT_S = 10
GRACE_S = 60
POLL_S = 2.0


class SearchInterrupted(ReuseError):
    """The search was stopped (Ctrl-C); the study keeps every finished trial."""

    exit_code = exit_codes.INTERRUPTED


_stop = {"requested": False}


def request_stop() -> None:
    """Ask the search to stop (Ctrl-C, SIGTERM): the next epoch end or trial start raises
    KeyboardInterrupt. Stopping there, rather than wherever the signal lands, keeps the
    interrupt from being lost or turned into another error (an exception raised while
    TensorFlow traces a function, or in a finalizer, does not arrive as itself)."""
    _stop["requested"] = True


def stop_requested() -> bool:
    return _stop["requested"]


def clear_stop() -> None:
    """Forget an earlier stop request (a new search starts)."""
    _stop["requested"] = False


def check_stop() -> None:
    """Raise KeyboardInterrupt when a stop was requested (then forget the request)."""
    if _stop["requested"]:
        _stop["requested"] = False
        raise KeyboardInterrupt


def require_optuna():
    """Import Optuna, or raise the ImportError the CLI turns into "install keras-reuse[tune]"."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def default_storage(output: str | Path) -> str:
    """`sqlite:///<output minus .json>.study.db`, beside the output (absolute, so every process
    started from another folder finds the same file)."""
    out = Path(output).resolve()
    name = out.name[: -len(".json")] if out.name.lower().endswith(".json") else out.name
    return f"sqlite:///{out.parent / (name + '.study.db')}"


def open_storage(url: str):
    """An Optuna RDB storage for `url`, with heartbeats and a wait on SQLite's lock.

    Raises:
        UsageError: a URL that is not a database URL SQLAlchemy knows.
    """
    import warnings

    optuna = require_optuna()
    from optuna.storages import RDBStorage

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    kwargs = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
    if retry is not None:
        kwargs["heartbeat_stale_trial_callback"] = retry(max_retry=2)
    else:  # Optuna 4
        kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=2)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=engine, **kwargs)
        except Exception as err:  # noqa: BLE001 - SQLAlchemy's errors are many; one line for them
            # Two processes creating the tables at once: one loses the race; try again.
            racing = ("UNIQUE constraint", "already exists", "database is locked")
            if attempt < 4 and any(text in str(err) for text in racing):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise UsageError(
                f"--storage {url}: cannot open it ({str(err).splitlines()[0][:160]})",
                "give a database URL such as sqlite:///study.db",
            ) from None


def open_study(storage, name: str, direction: str, sampler=None, pruner=None):
    """Create the study `name`, or load it when it exists (another process, an earlier run)."""
    optuna = require_optuna()
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )


def check_setup(study, setup: dict) -> None:
    """Store `setup` with a new study; refuse a study made for another search.

    Raises:
        UsageError: the study holds another setup (names the fields that differ).
    """
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", setup)
        stored = study.user_attrs.get("setup", setup)
    mine = json.loads(json.dumps(setup))
    if stored != mine:
        differ = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise UsageError(
            f"the study {study.study_name!r} in this storage was made for another search "
            f"(it differs in: {', '.join(differ)})",
            "run the same command as the first process, or pass another --study-name or --storage",
        )


def shared_value(study, key: str, compute):
    """A value every process of the study uses (the lr-find suggestions): the stored one, or
    `compute()` stored for the others."""
    if key in study.user_attrs:
        return study.user_attrs[key]
    value = json.loads(json.dumps(compute()))
    study.set_user_attr(key, value)
    return value


@dataclass
class Counts:
    """The trials of a study by state: finished (complete or pruned), running, waiting."""

    done: int
    running: int
    waiting: int


def counts(study) -> Counts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return Counts(done, running, waiting)


def requeue_interrupted(study) -> int:
    """Queue again, once, each trial that Ctrl-C stopped (same parameters and attributes).

    Returns how many were queued.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = 0
    for t in trials:
        if (
            t.state == TrialState.FAIL
            and t.user_attrs.get("interrupted")
            and t.number not in retried
        ):
            attrs = {k: v for k, v in t.user_attrs.items() if k not in ("interrupted", "seconds")}
            study.enqueue_trial(t.params, user_attrs={**attrs, "retry_of": t.number})
            queued += 1
    return queued


def run_until(
    study, objective, total: int, *, done=None, queued_only: bool = False, poll: float = POLL_S
) -> None:
    """Run trials of `study` in this process until `total` have finished in the whole study.

    A queued trial is taken first; a new one starts only while finished + running trials are
    fewer than `total` (never with `queued_only`); otherwise this process waits for the
    others' running trials (a trial whose process died is failed by the heartbeat and queued
    again, and then run here). `done(study)` counts the finished trials (default: complete
    and pruned ones).
    """
    import warnings

    optuna = require_optuna()
    while True:
        check_stop()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fail_stale_trials is marked experimental
            optuna.storages.fail_stale_trials(study)
        c = counts(study)
        finished = c.done if done is None else done(study)
        if finished >= total:
            return
        if c.waiting or (not queued_only and finished + c.running < total):
            study.optimize(objective, n_trials=1, gc_after_trial=False)
        elif c.running:
            time.sleep(poll)
        else:
            return
