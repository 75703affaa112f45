"""Training a pretraining network on the stage loop, and what a run returns and writes.

`train_network` trains any Keras model on in-memory (x, y) through
`reuse.training.runner.run_stages` with one stage in which every layer trains: the same
optimizers, schedules, early stopping, divergence guard, per-epoch checkpoints and `--resume`
as `finetune`, on `reuse.training.loop.fit_arrays`. A progress bar shows the epochs on a
terminal. `PretrainResult.save` writes the base model and, beside it, the history
(`<stem>.history.csv/.json`) and `<stem>.report.json`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reuse.core import report
from reuse.core.errors import DataError, TrainingDiverged
from reuse.pretrain.options import PretrainOptions


@dataclass
class PretrainResult:
    """What `pretrain_autoencoder` / `pretrain_pairs` return.

    Attributes:
        base: the trained encoder (autoencoder) or tower (pairs), a Keras model: the base.
        kind: "autoencoder" or "pairs".
        history: one dict per epoch (loss, val_loss, accuracy for pairs; `stage` = level).
        stages: one `StageResult` per trained network (the levels of a stacked autoencoder).
        metrics: the last epoch's metrics (the best epoch's with early stopping).
        options: the checked options of the run.
        rows: how many rows (autoencoder) or pairs trained.
    """

    base: object
    kind: str
    history: list[dict]
    stages: list
    metrics: dict
    options: PretrainOptions
    rows: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def top(self) -> str:
        """The name of the base's top layer: the cut that keeps the whole base."""
        return self.base.layers[-1].name

    def save(self, path: str | os.PathLike, *, history: str | os.PathLike | None = None):
        """Write the base to `path` (.keras), its history and its report, each atomically.

        Returns:
            (model path, history CSV path, report path).

        Raises:
            OutputError: a path that cannot be written.
        """
        from reuse.core import atomic, jsonio
        from reuse.core.naming import sidecar
        from reuse.formats import model_io
        from reuse.training.history import write_history

        out = Path(path)
        model_io.save_model(self.base, out)
        csv_path, _ = write_history(self.history, history or sidecar(out, "history"))
        payload = {
            "pretrain": self.kind,
            "base": self.base.name,
            "top": self.top,
            "rows": self.rows,
            "stages": [
                {
                    "stage": s.index,
                    "network": s.cut,
                    "epochs": s.epochs,
                    "best": s.best_metric,
                    "monitor": s.monitor,
                    "lr": s.lr,
                    "seconds": round(s.seconds, 2),
                    "diverged": s.diverged,
                }
                for s in self.stages
            ],
            "metrics": self.metrics,
            "options": asdict(self.options),
            **self.extra,
        }
        report_path = sidecar(out, "report", ".json")
        atomic.write_text(report_path, jsonio.dumps(payload, indent=1, lenient=True) + "\n")
        return out, csv_path, report_path


def level_folder(checkpoint_dir, mode: str, level: int = 1) -> Path | None:
    """Where the checkpoint of a network lies: `checkpoint_dir` itself, or its `level{k}`
    sub-folder for the levels of a stacked autoencoder (None without a folder)."""
    if checkpoint_dir is None:
        return None
    return Path(checkpoint_dir) if mode != "stacked" else Path(checkpoint_dir) / f"level{level}"


def require_resumable(checkpoint_dir, mode: str = "end-to-end") -> None:
    """Refuse `--resume` before any work (and without TensorFlow) when there is nothing to
    resume: no folder, or no checkpoint of the first network in it.

    Raises:
        UsageError: exit code 2, as `finetune --resume`.
    """
    from reuse.training.checkpoints import require_checkpoint

    require_checkpoint(level_folder(checkpoint_dir, mode))


def split_rows(n: int, fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a seeded `fraction` of range(n) held out, both sorted.

    Raises:
        DataError: too few rows to hold any out and keep some.
    """
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise DataError(
            f"{n} row(s): holding out {n_val} for validation leaves none to train on",
            "pass validation data with --val, or more rows",
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def row_augmenter(options: PretrainOptions, x: np.ndarray, seed_offset: int = 0):
    """The Augmenter of `options.augment` for rows like `x` (N, *input shape), or None.

    Built before any network is, so that a spec that does not fit the rows fails first, with
    the same error as `finetune`'s. Seeded by `options.seed` (+ `seed_offset`); the value
    range is inferred from `x` (`reuse.augment.pipeline.infer_value_range`).

    Raises:
        UsageError: an image operation on rows that are not (H, W, C) and no --image-shape;
            an --image-shape whose size is not the row size.
    """
    if not options.augment:
        return None
    from reuse.augment.pipeline import build_augmenter, infer_value_range

    return build_augmenter(
        options.augment,
        input_shape=x.shape[1:],
        image_shape=options.image_shape,
        seed=(options.seed or 0) + seed_offset,
        value_range=infer_value_range(x),
    )


def train_network(
    model,
    x,
    y,
    *,
    val=None,
    loss,
    metrics=(),
    options: PretrainOptions,
    kind: str,
    history: list[dict],
    index: int = 0,
    description: str = "pretraining",
    checkpoint_dir=None,
    resume: bool = False,
    callbacks=(),
    augment: bool = False,
):
    """Train every layer of `model` on (x, y) as one stage of `run_stages`; returns its
    `StageResult`.

    Args:
        model: a Keras model (not compiled; it is compiled here).
        x, y: inputs and targets, NumPy arrays of the same length.
        val: (x_val, y_val) or None; with it, early stopping watches `val_loss`.
        loss, metrics: for `compile`.
        options: the run's options (optimizer, lr, schedule, epochs, batch size, patience).
        kind: "autoencoder" or "pairs", recorded in the checkpoint's fingerprint.
        history: the per-epoch rows, appended to in place (`stage` is `index`).
        index: the stage number (a stacked autoencoder's level - 1).
        checkpoint_dir, resume: as `finetune`'s --checkpoint-dir / --resume; a resume with
            other options is refused.
        callbacks: more Keras callbacks.
        augment: augment the training inputs `x` with `options.augment` inside the training
            step (never `y`, never `val`), seeded by `options.seed`, the stage and the epoch.

    Raises:
        TrainingDiverged: the loss was NaN or Inf from the first epoch.
        UsageError: --resume without a checkpoint, or one made with other options.
    """
    from reuse.surgery.layer_tree import leaves
    from reuse.training.callbacks import EpochBar
    from reuse.training.inputs import TrainingInputs
    from reuse.training.runner import run_stages
    from reuse.training.stage import StagePlan
    from reuse.training.transfer import TransferModel

    training = options.training_options(augment=augment)
    transfer = TransferModel(
        model=model,
        reused=[],
        head=[e.path for e in leaves(model)],  # every layer trains
        cut=model.name,
        loss=loss,
        metrics=list(metrics),
        task="regression",
    )
    inputs = TrainingInputs(transfer, x=x, y=y, val=val)
    plan = StagePlan(index=index, trainable=[], lr=training.lr)
    with report.bar(training.epochs, description) as shown:
        stages = run_stages(
            transfer,
            inputs,
            training,
            history,
            plans=[plan],
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            judge=False,
            callbacks=[EpochBar(shown), *callbacks],
            extra_fingerprint=options.fingerprint(kind),
            announce=False,
        )
    result = stages[-1]
    rows = [r for r in history if r.get("stage") == index]
    if result.diverged and not any(np.isfinite(r.get("loss", np.nan)) for r in rows):
        raise TrainingDiverged(
            f"the {kind} loss became NaN or Inf in the first epoch",
            "lower --lr (try 10x lower), or check the data for huge values",
        )
    if result.diverged:
        report.warn("the loss became NaN or Inf; kept the weights of the last good epoch")
    best = "n/a" if result.best_metric is None else f"{result.best_metric:.4g}"
    report.info(f"{description}: {result.epochs} epochs, best {result.monitor} {best}")
    return result


def final_metrics(history: list[dict], stages: list, options: PretrainOptions) -> dict:
    """The metrics the base ends with (the best epoch's with early stopping), floats only."""
    from reuse.training.history import final_metrics as stage_metrics

    metrics = stage_metrics(history, stages, restored=options.early_stopping is not None)
    drop = ("stage", "epoch", "stage_epoch", "seconds", "lr")
    return {k: float(v) for k, v in metrics.items() if isinstance(v, float) and k not in drop}
