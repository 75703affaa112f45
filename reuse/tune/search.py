"""`tune`: the practical guide's coarse-to-fine search (steps 4 and 5), on Optuna.

1. The learning rate is centred on the lr-find suggestion (`reuse.guide.lr_find`, run once
   and stored with the study, so every process searches the same space).
2. Coarse: `TuneOptions.trials` short trials (`coarse_epochs` each) drawn by Optuna's TPE
   sampler; after each epoch the trial reports its validation metric and the pruner (median or
   Hyperband) stops the hopeless ones.
3. Fine: the `fine` best coarse configurations train again for `fine_epochs`, with early
   stopping; the best of them by validation is the result.

Every trial is a `reuse.training.finetune` run on the same training and validation rows, from
a freshly loaded model, trained from the feature cache where its frozen part allows
(`reuse.tune.features`). Validation chooses; test data is never read. The studies live in a
database (`reuse.tune.study`): a search stopped part-way resumes, and several processes share
one search.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reuse.core import report
from reuse.core.errors import TrainingDiverged, UsageError
from reuse.training.options import FinetuneOptions
from reuse.tune import study as studies
from reuse.tune.result import TuneResult, rows_of
from reuse.tune.space import parse_space

PRUNERS = ("median", "hyperband", "none")


@dataclass
class TuneOptions:
    """How a search runs (the `reuse tune` flags).

    Attributes:
        trials: coarse trials in the whole study (all processes together).
        coarse_epochs: epochs of each coarse trial (the guide: 1-5).
        fine: how many of the best coarse configurations train again for longer (0: none).
        fine_epochs: epochs of each fine trial, with early stopping (the guide: 10-20).
        patience: early-stopping patience of the fine trials, in epochs.
        metric: the validation metric that chooses (a `val_` history column); None:
            val_accuracy for classification, val_loss otherwise.
        pruner: median, hyperband or none.
        space: `--space` items (`reuse.tune.space`).
        storage: the study database URL; None: `sqlite:///<output>.study.db` beside the output.
        study_name: the study's name (the fine phase is `<name>.fine`).
        use_cache: train from a feature cache where the frozen part allows.
        seed: seeds the sampler (trial n draws with seed + n) and every trial's training.
    """

    trials: int = 20
    coarse_epochs: int = 3
    fine: int = 3
    fine_epochs: int = 20
    patience: int = 5
    metric: str | None = None
    pruner: str = "median"
    space: tuple = ()
    storage: str | None = None
    study_name: str = "reuse-tune"
    use_cache: bool = True
    seed: int | None = None

    def check(self) -> None:
        """Refuse bad values before any work, naming the flag and echoing the value."""
        for name in ("trials", "coarse_epochs", "fine_epochs"):
            if getattr(self, name) < 1:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(self, name)}",
                    "give a positive number",
                )
        for name in ("fine", "patience"):
            if getattr(self, name) < 0:
                raise UsageError(
                    f"--{name} must be >= 0. Received: {getattr(self, name)}", "e.g. --fine 3"
                )
        if self.pruner not in PRUNERS:
            raise UsageError(
                f"--pruner must be one of {', '.join(PRUNERS)}. Received: {self.pruner!r}",
                "use --pruner median",
            )
        if self.metric is not None and not self.metric.startswith("val_"):
            raise UsageError(
                f"--metric must be a validation metric (val_...). Received: {self.metric!r}",
                "validation chooses, e.g. --metric val_accuracy or val_loss",
            )
        parse_space(self.space)


def maximize(metric: str) -> bool:
    """Whether a larger `metric` is better (accuracy, AUC, precision, recall)."""
    return any(k in metric for k in ("acc", "auc", "precision", "recall"))


def tune(
    model_path: str | os.PathLike,
    train,
    val,
    *,
    output: str | os.PathLike,
    options: TuneOptions | None = None,
    base: FinetuneOptions | None = None,
    features: str | os.PathLike | None = None,
    unsafe: bool = False,
) -> TuneResult:
    """Search the fine-tuning options of `model_path` on `train`, choosing on `val`.

    Example:
        >>> result = tune("base.keras", load_data("train.npz"), load_data("valid.npz"),
        ...               output="best.json", options=TuneOptions(trials=12, seed=0))
        >>> result.best.config            # {'lr': 0.0021, 'l2': 1e-05, 'epochs': 20, ...}

    Args:
        model_path: the model to reuse (each trial loads it afresh).
        train, val: Datasets (`reuse.data.load_data`); every trial uses these same rows.
        output: where best.json goes; the default storage and cache sit beside it.
        options: the search (TuneOptions); `base`: the fine-tuning options every trial starts
            from (head, batch size, optimizer, ...); the search sets lr, l2 and the space's
            other dimensions.
        features: a feature cache of `train` to train from (default: one made here).

    Returns:
        TuneResult: every trial's row, the best configuration, the storage URL.

    Raises:
        UsageError: bad options; a study in the storage made for another search.
        SearchInterrupted: Ctrl-C (the finished trials stay in the study).
        ImportError: Optuna is not installed (the CLI names the `tune` extra).
    """
    options = options or TuneOptions()
    options.check()
    base = replace(base or FinetuneOptions(), seed=options.seed)
    replace(base).check()
    return _Search(
        Path(model_path), train, val, Path(output), options, base, features, unsafe
    ).run()


@dataclass
class _Search:
    model_path: Path
    train: object
    val: object
    output: Path
    options: TuneOptions
    base: FinetuneOptions
    features: object
    unsafe: bool
    started: float = field(default_factory=time.perf_counter)

    def run(self) -> TuneResult:
        from reuse.formats import model_io
        from reuse.training.transfer import label_task

        optuna = studies.require_optuna()
        studies.clear_stop()
        self.space = parse_space(self.options.space)
        if self.val is None:
            raise UsageError(
                "tune needs validation data: every trial is judged on the same rows",
                "pass --val VALID, or --val-split F",
            )
        self.model = model_io.load_model(self.model_path, unsafe=self.unsafe)
        _, y = self.train.arrays()
        task = label_task(y)
        self.metric = self.options.metric or (
            "val_accuracy" if task in ("multiclass", "binary") else "val_loss"
        )
        direction = "maximize" if maximize(self.metric) else "minimize"
        self.features_for = self._plan_features(y)
        self.storage_url = self.options.storage or studies.default_storage(self.output)
        storage = studies.open_storage(self.storage_url)
        name = self.options.study_name
        coarse = studies.open_study(storage, name, direction, self._sampler(None), self._pruner())
        studies.check_setup(coarse, self._setup())
        self.lr_centers = {}
        if self.space.needs_lr_find():
            self.lr_centers = studies.shared_value(coarse, "lr_suggestions", self._lr_find)
            for opt, lr in self.lr_centers.items():
                report.info(f"lr-find suggests {lr:.3g} for {opt}: the search centres there")
        try:
            requeued = studies.requeue_interrupted(coarse)
            if requeued:
                report.info(f"resuming: {requeued} interrupted trial(s) queued again")
            done = studies.counts(coarse).done
            if done:
                report.info(f"study {name!r}: {done} of {self.options.trials} coarse trials done")
            studies.run_until(coarse, self._coarse_objective, self.options.trials)
            fine = None
            if self.options.fine:
                fine = studies.open_study(
                    storage, f"{name}.fine", direction, optuna.samplers.RandomSampler(), None
                )
                studies.check_setup(fine, self._setup())
                self._run_fine(coarse, fine)
        except KeyboardInterrupt:
            raise studies.SearchInterrupted(
                f"interrupted; the finished trials are kept in {self.storage_url}",
                "run the same command again to resume",
            ) from None
        rows = rows_of(coarse, "coarse") + (rows_of(fine, "fine") if fine is not None else [])
        return TuneResult.build(
            rows,
            metric=self.metric,
            direction=direction,
            storage=self.storage_url,
            study=name,
            space=self.space.texts(),
            searched=self.space.searched(),
            lr_suggestions=self.lr_centers,
            cache=str(self._cache) if self._cache else None,
            seconds=time.perf_counter() - self.started,
            base=self.base,
            epochs={"coarse": self.options.coarse_epochs, "fine": self.options.fine_epochs},
            patience=self.options.patience,
        )

    # ------------------------------------------------------------------ setup

    def _setup(self) -> dict:
        """What must agree for two processes to share a study."""
        from reuse.data.identity import file_identity

        model = (
            file_identity(self.model_path)
            if self.model_path.is_file()
            else {"path": str(self.model_path.resolve())}
        )
        base = {k: v for k, v in asdict(self.base).items() if k != "tensorboard"}
        return {
            "model": model.get("sha256", model.get("path")),
            "data": self.train.identity,
            "val": self.val.identity,
            "metric": self.metric,
            "space": self.space.texts(),
            "coarse_epochs": self.options.coarse_epochs,
            "fine_epochs": self.options.fine_epochs,
            "patience": self.options.patience,
            "base": json.loads(json.dumps(base, default=str)),
        }

    def _plan_features(self, y) -> dict:
        from reuse.tune.features import cache_path_for, ensure_cache, plan_taps

        self._cache, self._taps = None, {}
        combos = self.space.combinations(self.base.cut, self.base.unfreeze)
        if self.features is not None:
            from reuse.cache import open_cache

            with open_cache(self.features, model=self.model) as cache:
                taps = plan_taps(self.model, y, self.base, combos, taps=cache.taps)
            self._cache = Path(self.features)
        elif not self.options.use_cache:
            return {}
        else:
            taps = plan_taps(self.model, y, self.base, combos)
            needed = sorted({t for t in taps.values() if t is not None})
            if not needed:
                return {}
            if self.base.augment:
                report.info(
                    "note: --augment trains from raw rows (a cache would need augmented views); "
                    "trials do not use a feature cache"
                )
                return {}
            self._cache = ensure_cache(
                self.model, self.train, cache_path_for(self.output), needed, self.model_path
            )
        self._taps = taps
        return {combo: (self._cache if tap else None) for combo, tap in taps.items()}

    def _lr_find(self) -> dict:
        from reuse.guide.lr_find import lr_find

        combo = self.space.combinations(self.base.cut, self.base.unfreeze)[0]
        out = {}
        for opt in self.space.optimizers(self.base.optimizer):
            options = replace(self.base, optimizer=opt, cut=combo[0], unfreeze=combo[1])
            with _quiet():
                result = lr_find(
                    self.model, self.train, features=self.features_for.get(combo), options=options
                )
            out[opt] = result.suggestion
        return out

    def _sampler(self, number: int | None):
        """TPE, seeded per trial (seed + trial number) so that processes sharing a study draw
        different points and a single process's search is reproducible."""
        import optuna

        seed = None if self.options.seed is None else self.options.seed + (number or 0)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    def _pruner(self):
        import optuna

        if self.options.pruner == "none":
            return optuna.pruners.NopPruner()
        if self.options.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=self.options.coarse_epochs, reduction_factor=3
            )
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)

    # ------------------------------------------------------------------ trials

    def _coarse_objective(self, trial) -> float:
        if self.options.seed is not None:
            trial.study.sampler = self._sampler(trial.number)
        config = self.space.suggest(trial, self.lr_centers, self.base.optimizer)
        return self._trial(trial, "coarse", config, self.options.coarse_epochs, None, prune=True)

    def _run_fine(self, coarse, fine) -> None:
        from optuna.trial import TrialState

        ranked = sorted(
            (t for t in coarse.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE),
            key=lambda t: (-t.value if maximize(self.metric) else t.value, t.number),
        )
        candidates, keys = [], set()
        for t in ranked:
            key = _key(t.user_attrs["config"])
            if key not in keys:
                keys.add(key)
                candidates.append(t)
            if len(candidates) == self.options.fine:
                break
        present = {
            t.user_attrs.get("key")
            for t in fine.get_trials(deepcopy=False)
            if t.state != TrialState.FAIL
        }
        for t in candidates:
            key = _key(t.user_attrs["config"])
            if key not in present:
                fine.enqueue_trial(
                    {}, user_attrs={"config": t.user_attrs["config"], "key": key, "from": t.number}
                )
        studies.requeue_interrupted(fine)
        report.info(
            f"fine: the best {len(candidates)} configuration(s) train for up to "
            f"{self.options.fine_epochs} epochs (early stopping, patience {self.options.patience})"
        )

        def finished(study) -> int:
            return len(
                {
                    t.user_attrs.get("key")
                    for t in study.get_trials(deepcopy=False)
                    if t.state == TrialState.COMPLETE
                }
            )

        studies.run_until(
            fine, self._fine_objective, len(candidates), done=finished, queued_only=True
        )

    def _fine_objective(self, trial) -> float:
        import optuna
        from optuna.trial import TrialState

        config, key = trial.user_attrs.get("config"), trial.user_attrs.get("key")
        if config is None:  # another process took the last queued trial first
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("no configuration left to train")
        for other in trial.study.get_trials(deepcopy=False):
            if (
                other.number < trial.number
                and other.user_attrs.get("key") == key
                and other.state in (TrialState.RUNNING, TrialState.COMPLETE)
            ):
                trial.set_user_attr("duplicate_of", other.number)
                raise optuna.TrialPruned(f"trial {other.number} trains this configuration")
        return self._trial(
            trial, "fine", config, self.options.fine_epochs, self.options.patience, prune=False
        )

    def _trial(self, trial, phase, config, epochs, patience, *, prune: bool) -> float:
        """Train one configuration; report each epoch to the pruner; the metric it ends with."""
        import optuna

        from reuse.formats import model_io
        from reuse.training.finetune import finetune

        options = replace(self.base, **config, epochs=epochs, early_stopping=patience)
        combo = (options.cut, options.unfreeze)
        features = self.features_for.get(combo)
        trial.set_user_attr("config", config)
        trial.set_user_attr("tap", self._taps.get(combo) if features else "input")
        callback = _PruningCallback.make(trial, self.metric, prune=prune)
        started = time.perf_counter()
        outcome, value = "failed", None
        try:
            model = model_io.load_model(self.model_path, unsafe=self.unsafe)
            with _quiet():
                result = finetune(
                    model,
                    self.train,
                    val=self.val,
                    features=features,
                    options=options,
                    callbacks=[callback],
                )
            value = result.metrics.get(self.metric)
            trial.set_user_attr("epochs", len(result.history))
            if value is None:
                raise UsageError(
                    f"the trials report no {self.metric}",
                    "choose a --metric among the val_ columns of finetune's history",
                )
            if not math.isfinite(value):
                raise TrainingDiverged("the loss became NaN or Inf", "a lower lr")
            outcome = "done"
            return float(value)
        except TrainingDiverged:
            outcome = "diverged"
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned("diverged") from None
        except optuna.TrialPruned:
            outcome = "pruned"
            trial.set_user_attr("epochs", callback.step)
            raise
        except KeyboardInterrupt:
            outcome = "interrupted"
            trial.set_user_attr("interrupted", True)
            raise
        except Exception:
            if not studies.stop_requested():
                raise
            # A second Ctrl-C that landed inside TensorFlow's tracing arrives as another error.
            studies.clear_stop()
            outcome = "interrupted"
            trial.set_user_attr("interrupted", True)
            raise KeyboardInterrupt from None
        finally:
            seconds = time.perf_counter() - started
            trial.set_user_attr("seconds", round(seconds, 3))
            self._announce(trial, phase, config, outcome, value, seconds, callback)

    def _announce(self, trial, phase, config, outcome, value, seconds, callback) -> None:
        """One line per trial on stderr: what it tried, how it ended, what it cost."""
        shown = "  ".join(
            f"{'wd' if k == 'l2' else k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in config.items()
        )
        what = {
            "done": f"{self.metric} {value:.4f}" if value is not None else "done",
            "pruned": f"pruned after epoch {callback.step}",
            "diverged": "diverged",
            "interrupted": "interrupted",
            "failed": "failed",
        }[outcome]
        report.info(f"{phase} trial {trial.number}: {shown} -> {what} ({seconds:.1f} s)")


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


class _PruningCallback:
    """A Keras callback that reports each epoch's validation metric to the Optuna trial and
    stops the trial (TrialPruned) when the pruner says it is hopeless (with `prune`), and
    stops the search at the epoch's end when a stop was requested (Ctrl-C, SIGTERM)."""

    @staticmethod
    def make(trial, metric: str, *, prune: bool = True):
        import optuna

        from reuse.training.callbacks import keras_callback_base

        class Pruning(keras_callback_base()):
            def __init__(self):
                super().__init__()
                self.step = 0

            def on_epoch_end(self, epoch, logs=None):
                studies.check_stop()
                self.step += 1
                value = (logs or {}).get(metric)
                if not prune or value is None or not math.isfinite(float(value)):
                    return
                trial.report(float(value), self.step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {self.step}")

        return Pruning()


class _quiet:
    """Silence finetune's notes during a trial (the search prints one line per trial)."""

    def __enter__(self):
        self.was = report.is_quiet()
        report.set_quiet(True)

    def __exit__(self, *exc):
        report.set_quiet(self.was)
