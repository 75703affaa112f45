"""Fine-tuning: keep the reused layers, put a new head on top, train in stages.

A run is a list of stages. Each stage names the reused layers it trains, gets a fresh compile
with a new optimizer (Keras ignores `trainable` changes otherwise, and an optimizer built for
other variables fails), its own early stopping, and trains from the deepest cached tap below
its lowest trainable layer — or from the raw inputs when no tap fits. `finetune` runs one stage
(`--unfreeze none|all`); `reuse.training.runner` runs many with the same machinery.

The model that is trained from the cache shares its layer objects with the whole model, so
the whole model is what gets saved, and its predictions on raw inputs equal the cached path's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from reuse.core import report
from reuse.core.errors import DataError, TrainingDiverged, UsageError
from reuse.data.dataset import as_dataset
from reuse.training.history import final_metrics, history_has_finite, write_history, write_report
from reuse.training.inputs import (
    TrainingInputs,
    data_arrays,
    deepest_tap_below,
    resolve_cache,
)
from reuse.training.options import FinetuneOptions
from reuse.training.stage import StageResult
from reuse.training.transfer import TransferModel, build_transfer_model


@dataclass
class FinetuneResult:
    """What `finetune` returns.

    Attributes:
        model: the whole trained Keras model (reused layers + head), ready to save.
        transfer: the cut, the reused leaf layers and the head's layer names.
        history: one dict per epoch over all stages (loss, metrics, lr, tap, seconds).
        stages: the stage table, one StageResult per stage run (`kept` tells which counted).
        metrics: the metrics of the epoch whose weights the model ends with.
        used_cache: whether training read the feature cache.
    """

    model: object
    transfer: TransferModel
    history: list[dict]
    stages: list[StageResult]
    metrics: dict
    used_cache: bool
    options: FinetuneOptions | None = None
    lora: dict | None = None  # rank, alpha, layers, trainable vs full fine-tuning params

    def save(
        self,
        path: str | os.PathLike,
        *,
        history: str | os.PathLike | None = None,
        base: str | None = None,
    ) -> SavedRun:
        """Write the model to `path` and, beside it, `<stem>.history.csv/.json` and
        `<stem>.report.json` (cut, head, reused layers, stage table, final metrics).

        With LoRA the model is saved with its adapters merged (a plain model), or, with
        `options.lora_save == "adapters"`, `path` (a .npz) gets only the adapters and the head
        (`reuse.training.lora.save_adapters`; `base` names the base model in it).
        Each file is written atomically (`reuse.core.atomic`). `history` overrides the
        history files' base name. Raises OutputError for a path that cannot be written.
        """
        from reuse.core.naming import sidecar
        from reuse.formats import model_io

        out = Path(path)
        model = self.model
        lora = self.options is not None and self.options.lora
        if lora and self.options.lora_save == "adapters":
            from reuse.training.lora import save_adapters

            save_adapters(out, self.transfer, base_name=base or model.name)
            csv_path, json_path = write_history(self.history, history or sidecar(out, "history"))
            report_path = write_report(sidecar(out, "report", ".json"), self)
            return SavedRun(out, csv_path, json_path, report_path)
        if lora:
            from reuse.training.lora import merged_model

            model = merged_model(model)  # plain layers, uncompiled
        model_io.save_model(loads_anywhere(model), out)
        csv_path, json_path = write_history(self.history, history or sidecar(out, "history"))
        report_path = write_report(sidecar(out, "report", ".json"), self)
        return SavedRun(out, csv_path, json_path, report_path)


def loads_anywhere(model):
    """`model`, or its layers and weights uncompiled when its compile state holds one of
    reuse's own objects: the loss of --label-smoothing on sparse labels, or a --schedule
    without a Keras equivalent (one-cycle, power with c≠1). Plain Keras, in a process that
    never imports reuse, loads either; an uncompiled model loses only the optimizer state
    (the schedule and loss stay in the run's .report.json)."""
    import json

    try:
        config = json.dumps(model.get_compile_config() or {}, default=str)
    except Exception:  # noqa: BLE001 - a model that cannot describe its compile state
        config = ""
    ours = type(getattr(model, "loss", None)).__module__.startswith("reuse.")
    if not (ours or '"reuse.' in config or '"reuse>' in config):
        return model
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


@dataclass
class SavedRun:
    """The files `FinetuneResult.save` wrote."""

    model: Path
    history_csv: Path
    history_json: Path
    report: Path


def finetune(
    model,
    data=None,
    *,
    val=None,
    features=None,
    options: FinetuneOptions | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    strategy=None,
    callbacks: list | None = None,
    **kwargs,
) -> FinetuneResult:
    """Reuse the lower layers of `model`, add a new head, and train it.

    Example:
        >>> result = finetune(reuse.load_model("base.keras"), reuse.load_data("train.npz"),
        ...                   head="auto", optimizer="adam", epochs=5)
        >>> result.model.save("tuned.keras")

    Args:
        model: the Keras model to reuse, or its path (read with `reuse.load_model`, safe mode).
        data: a `reuse.data.dataset.Dataset`, a data file's path, or `(x, y)` arrays;
            optional when `features` is given.
        val: validation data, a Dataset, a path or `(x, y)`.
        features: path of a feature cache made from `model` (trains from it).
        options: a FinetuneOptions; keyword arguments override its fields.
        checkpoint_dir: write a checkpoint after every epoch into this folder.
        resume: continue the run checkpointed in `checkpoint_dir`.
        strategy: a `tf.distribute` strategy (`reuse.training.distribute.make_strategy`) to
            train under: the model (cloned into its scope unless made there), the head and
            every optimizer are replicated, and `batch_size` is the global batch. Under a
            multi-worker strategy only the chief writes checkpoints.
        callbacks: more Keras callbacks for every stage's fit (e.g. a tuner's pruning
            callback); their `on_epoch_end` logs hold the epoch's loss and metrics.

    Returns:
        FinetuneResult with the whole trained model, the history and the stage table.

    Raises:
        CacheMismatch: the cache was made from another model or other data.
        UsageError: contradictory options (e.g. a cache with --unfreeze all).
        TrainingDiverged: the loss became NaN or Inf before anything useful was learned.
    """
    options = FinetuneOptions(**{**asdict(options or FinetuneOptions()), **kwargs})
    options.check()
    if isinstance(model, (str, os.PathLike)):
        from reuse.formats.model_io import load_model

        model = load_model(model)
    # A path is read once here, so the cache's data check sees the Dataset's identity.
    data, val = as_dataset(data), as_dataset(val)
    if strategy is None:
        return _finetune(model, data, val, features, options, checkpoint_dir, resume, callbacks)
    from reuse.training.distribute import adopt, is_multi_worker

    if is_multi_worker(strategy) and options.stage_lr == "find" and options.unfreeze == "gradual":
        raise UsageError(
            "--stage-lr find is not available with --distribute multi-worker: its sweep runs "
            "Keras' own train_on_batch, which keras-team/keras#20585 reports broken under "
            "MultiWorkerMirroredStrategy",
            "use --stage-lr div (the default) or set --lr",
        )
    if options.seed is None and is_multi_worker(strategy):
        # Every worker must shuffle alike: the order of epoch e comes from (seed, e).
        options.seed = 0
        report.info("note: multi-worker training shuffles with --seed 0 (none given)")
    with strategy.scope():
        model = adopt(model, strategy)
        return _finetune(model, data, val, features, options, checkpoint_dir, resume, callbacks)


def _finetune(
    model, data, val, features, options, checkpoint_dir, resume, callbacks
) -> FinetuneResult:
    """`finetune` once the options are checked, inside the strategy's scope if any."""
    import keras

    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    if features is not None and options.unfreeze == "all":
        raise UsageError(
            "--features cannot be used with --unfreeze all: the cached layers would be trained",
            "drop --features (or --no-cache), or use --unfreeze none or gradual",
        )

    run = prepare(model, data, val=val, features=features, options=options)
    transfer, inputs, cache = run.transfer, run.inputs, run.cache
    if cache is not None and cache.view_count and not options.augment:
        report.info(
            f"note: {cache.path} holds {cache.view_count} augmented views "
            f"(--augment {cache.augment_spec}), and no --augment was given, so training uses "
            f"its clean features only; add --augment {cache.augment_spec} to train on the views"
        )
    if options.mixed_precision:
        from reuse.surgery.precision import set_mixed_precision

        set_mixed_precision(transfer.model, options.mixed_precision)
    x, y, val_arrays = (
        inputs.x,
        inputs.y,
        (inputs.val_x, inputs.val_y) if inputs.val_x is not None else None,
    )
    if (
        cache is not None
        and x is None
        and val_arrays is None
        and not options.val_split
        and options.early_stopping is not None
    ):
        report.info("note: no validation data; early stopping watches the training loss")

    from reuse.training import plans as policies
    from reuse.training.runner import run_stages

    history: list[dict] = []
    if options.unfreeze == "gradual":
        if options.reuse_depth.startswith("search"):
            transfer, inputs, stages, history = policies.search_reuse_depth(
                model, y, x, cache, val_arrays, options
            )
            prior = [s for s in stages if s.cut == transfer.cut]
            plans = policies.gradual_unfreezing(transfer, options, inputs.taps)[1:]
            later = run_stages(
                transfer,
                inputs,
                options,
                history,
                plans=plans,
                prior=prior,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                callbacks=callbacks,
            )
            stages = stages + later[len(prior) :]
        else:
            stages = run_stages(
                transfer,
                inputs,
                options,
                history,
                plans=policies.gradual_unfreezing(transfer, options, inputs.taps),
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                callbacks=callbacks,
            )
    else:
        trainable, tap = run.trainable, run.tap
        if (
            options.unfreeze == "none"
            and not options.lora
            and transfer.reused
            and len(trainable) == len(transfer.reused)
        ):
            report.info(
                "note: no reused layer is frozen, so every reused layer will train; transfer "
                "usually wants `reuse freeze` first or --unfreeze gradual"
            )
        if trainable and cache is not None:
            what = "carry LoRA adapters" if options.lora else "are trainable in the model"
            report.info(f"note: {len(trainable)} reused layer(s) {what}; they train from tap {tap}")
        stages = run_stages(
            transfer,
            inputs,
            options,
            history,
            plans=policies.single_stage(transfer, trainable, tap, options),
            judge=False,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            callbacks=callbacks,
        )
    if stages and stages[-1].diverged and not history_has_finite(history):
        raise TrainingDiverged(
            "the loss became NaN or Inf in the first epoch",
            "lower --lr (try 10x lower), check the inputs for huge values, or use another initialization",
        )
    if options.unfreeze != "gradual" and stages and stages[-1].diverged:
        report.warn(
            "the loss became NaN or Inf; kept the weights of the last good epoch — try a lower --lr"
        )
    if options.mixed_precision:
        set_mixed_precision(transfer.model, None)  # the saved model computes in float32
    metrics = final_metrics(history, stages, restored=options.early_stopping is not None)
    lora = None
    if options.lora:
        from reuse.training.lora import full_finetune_params, lora_layers

        adapted = lora_layers(transfer.model)
        lora = {
            "rank": options.lora,
            "alpha": options.lora_alpha or float(options.lora),
            "layers": list(adapted),
            "trainable_params": stages[-1].params if stages else None,
            "full_finetune_params": full_finetune_params(transfer, train_bn=options.train_bn),
        }
    return FinetuneResult(
        model=transfer.model,
        transfer=transfer,
        history=history,
        stages=stages,
        metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
        used_cache=cache is not None,
        options=options,
        lora=lora,
    )


@dataclass
class PreparedRun:
    """A transfer model set up as the first stage of `finetune` trains it."""

    transfer: TransferModel
    inputs: TrainingInputs
    trainable: list[str]
    tap: str | None
    cache: object = None

    def train_model(self):
        """The model the stage fits: the whole model, or the part above the cached tap."""
        from reuse.surgery import cuts

        return (
            self.transfer.model
            if self.tap is None
            else cuts.top_model(self.transfer.model, self.tap)
        )


def prepare(model, data=None, *, val=None, features=None, options: FinetuneOptions) -> PreparedRun:
    """Build the transfer model, its inputs (raw or cached), and the first stage's trainable
    layers and tap — the setup `finetune`, `lr_find` and `check` share.

    Example:
        >>> run = prepare(base, dataset, options=FinetuneOptions())
        >>> run.train_model().fit(*run.inputs.train(run.tap))

    Raises:
        DataError: no labels. CacheMismatch: a cache made from another model or data.
        UsageError: a cache whose taps lie above layers the first stage trains.
    """
    options.check()
    x, y, _ = data_arrays(data)
    if features is not None:
        from reuse.cache import open_cache

        with open_cache(features) as peek:
            labels = peek.labels
        y = labels if y is None else y
    if y is None:
        raise DataError(
            "no labels to train on", "pass --data with labels, or a feature cache that stores them"
        )
    transfer = build_transfer_model(model, y, options)
    from reuse.data.shapes import fit_input_shape

    if x is not None:
        source_shape = x.shape[1:]
        x = fit_input_shape(x, transfer.model, source=getattr(data, "path", "--data"))
        if options.augment and options.image_shape is None:
            from reuse.augment.spec import implied_image_shape

            # image rows flattened for the model are augmented as the images they were
            options.image_shape = implied_image_shape(source_shape, x.shape[1:])
    val_arrays = None
    if val is not None:
        vx, vy, _ = data_arrays(val)
        val_arrays = (fit_input_shape(vx, transfer.model, source=getattr(val, "path", "--val")), vy)
    cache = (
        resolve_cache(features, transfer, data, model_path=getattr(model, "_reuse_path", None))
        if features is not None
        else None
    )
    inputs = TrainingInputs(
        transfer,
        x=x,
        y=y,
        cache=cache,
        val=val_arrays,
        val_split=options.val_split,
        seed=options.seed,
    )
    if options.lora:
        from reuse.training.lora import enable_lora

        # The adapted layers train (their adapters only); every other reused layer is frozen.
        trainable = enable_lora(transfer, options.lora, options.lora_alpha, options.lora_layers)
    else:
        trainable = first_trainable(transfer, options)
    tap = deepest_tap_below(transfer, trainable, inputs.taps) if cache is not None else None
    if cache is not None and tap is None:
        raise UsageError(
            f"the cache's taps ({', '.join(inputs.taps)}) lie above reused layers that this run trains "
            f"({', '.join(trainable[:3])}{', ...' if len(trainable) > 3 else ''}), so it cannot be used",
            "freeze those layers first (reuse freeze --upto TAP), cache a lower tap, or drop --features",
        )
    return PreparedRun(transfer, inputs, trainable, tap, cache)


def first_trainable(transfer: TransferModel, options: FinetuneOptions) -> list[str]:
    """The reused layers the first stage trains: every one (`--unfreeze all`), none (gradual
    starts with the head), the top N that can learn (`top:N`, as `plans.unfreeze_order`
    counts them), or those the model marks trainable (`none`)."""
    if options.unfreeze == "all":
        return list(transfer.reused)
    if options.unfreeze == "gradual":
        return []
    top = options.unfreeze_top()
    if top is not None:
        from reuse.training.plans import unfreeze_order

        return unfreeze_order(transfer, train_bn=options.train_bn)[:top]
    return [n for n in transfer.reused if _layer(transfer, n).trainable]


def _layer(transfer: TransferModel, path: str):
    from reuse.surgery.layer_tree import find

    return find(transfer.model, path).layer
