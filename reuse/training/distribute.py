"""Training on several devices or hosts with `tf.distribute`, under reuse's own loop.

`make_strategy("mirrored")` is a `tf.distribute.MirroredStrategy` over the local GPUs (or the
logical CPU devices `split_cpu(n)` made); `make_strategy("multi-worker")` a
`MultiWorkerMirroredStrategy` configured from `TF_CONFIG`. Variables made inside
`strategy.scope()` are replicated: `reuse.training.finetune.finetune(..., strategy=...)` builds
(or clones) the model and creates every optimizer there.

`ReplicatedSteps` is the strategy-aware step function of `reuse.training.loop.fit_arrays`:
each global batch (`batch_size` rows of the epoch's shuffled order, as on one device) is split
into one contiguous chunk per replica; every replica runs the model's own `train_step` under
`strategy.run`; Keras scales each replica's mean loss by 1/replicas, so the all-reduced
gradient is the gradient of the global batch's mean loss (exactly when the chunks are of
equal size). The metrics are Keras' sync-on-read variables, summed over the replicas when
read. A last batch with fewer rows than replicas joins the batch before it, so no replica
ever gets an empty chunk.

Keras 3's own `model.fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585,
#20329); this loop does not use it.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from reuse.core.errors import UsageError

MODES = ("none", "mirrored", "multi-worker")


def split_cpu(n: int) -> None:
    """Split the host CPU into `n` logical devices (for trials and tests without GPUs).

    Must run before TensorFlow initializes its devices (before any tensor is made).

    Raises:
        UsageError: `n` < 1, or TensorFlow's devices are already initialized.
    """
    import tensorflow as tf

    if n < 1:
        raise UsageError(f"--cpu-devices must be >= 1. Received: {n}", "use e.g. --cpu-devices 2")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != n:
            raise UsageError(
                "TensorFlow's devices are already set up; the CPU can no longer be split",
                "split the CPU before anything else uses TensorFlow",
            ) from None


def make_strategy(mode: str | None, cpu_devices: int | None = None):
    """The `tf.distribute` strategy for `--distribute MODE`, or None for "none".

    Args:
        mode: "none", "mirrored" (all local GPUs, else all logical CPU devices) or
            "multi-worker" (`MultiWorkerMirroredStrategy` from the `TF_CONFIG` variable).
        cpu_devices: split the CPU into this many logical devices first (`split_cpu`).

    Raises:
        UsageError: an unknown mode, or multi-worker without a valid TF_CONFIG.
    """
    mode = (mode or "none").strip().lower()
    if mode not in MODES:
        raise UsageError(
            f"unknown --distribute {mode!r}", "use --distribute none, mirrored or multi-worker"
        )
    import tensorflow as tf

    if cpu_devices:
        split_cpu(cpu_devices)
    if mode == "none":
        return None
    if mode == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        names = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=names)
    config = _tf_config()
    workers = config.get("cluster", {}).get("worker", [])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    if strategy.num_replicas_in_sync < len(workers):
        raise UsageError(
            f"TF_CONFIG names {len(workers)} workers but the strategy sees "
            f"{strategy.num_replicas_in_sync} replicas",
            "check TF_CONFIG's cluster and task on every worker",
        )
    return strategy


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise UsageError(
            "TF_CONFIG is not valid JSON",
            'set TF_CONFIG=\'{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}\'',
        ) from None
    if not config.get("cluster", {}).get("worker") or "task" not in config:
        raise UsageError(
            "--distribute multi-worker needs TF_CONFIG with cluster.worker and task",
            'set TF_CONFIG=\'{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}\' on every worker (index 0 is the chief)',
        )
    return config


def is_chief(strategy=None) -> bool:
    """Whether this process writes the outputs: always, except on the workers of a
    multi-worker run other than worker 0 (the chief)."""
    if strategy is None or not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0 and not _has_chief(resolver)
    )


def _has_chief(resolver) -> bool:
    return "chief" in resolver.cluster_spec().as_dict()


def is_multi_worker(strategy) -> bool:
    """Whether `strategy` spans several processes (a `MultiWorkerMirroredStrategy`)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def scope(strategy):
    """`strategy.scope()`, or a context that does nothing when `strategy` is None."""
    import contextlib

    return contextlib.nullcontext() if strategy is None else strategy.scope()


def active_strategy():
    """The strategy whose scope we are in, or None outside any (or in the default one)."""
    import tensorflow as tf

    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def adopt(model, strategy):
    """`model` with its variables made under `strategy.scope()`: the model itself when it was
    built there, else a clone with the same weights (and trainability).

    Call inside `strategy.scope()`.
    """
    import keras

    # Keras records the strategy whose scope a model was made in (None: none).
    if getattr(model, "_distribute_strategy", None) is strategy:
        return model
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for src, dst in zip(model._flatten_layers(), clone._flatten_layers(), strict=False):
        dst.trainable = src.trainable
    return clone


def chunk_bounds(rows: int, batch_size: int, replicas: int) -> np.ndarray:
    """Row offsets of every replica's chunk, shape (steps, replicas + 1), into an epoch's order.

    Step s covers rows [s * batch_size, (s + 1) * batch_size) of the order, cut into
    `replicas` contiguous chunks whose sizes differ by at most one. A last batch with
    fewer rows than replicas joins the batch before it.

    Raises:
        UsageError: fewer rows than replicas.
    """
    if rows < replicas:
        raise UsageError(
            f"{rows} rows cannot be split over {replicas} replicas",
            "use fewer devices (--cpu-devices, CUDA_VISIBLE_DEVICES) or more rows",
        )
    starts = list(range(0, rows, batch_size))
    if len(starts) > 1 and rows - starts[-1] < replicas:
        starts.pop()
    ends = [*starts[1:], rows]
    bounds = []
    for a, b in zip(starts, ends, strict=True):
        base, extra = divmod(b - a, replicas)
        sizes = [base + (1 if r < extra else 0) for r in range(replicas)]
        bounds.append(a + np.concatenate([[0], np.cumsum(sizes)]))
    return np.stack(bounds).astype(np.int64)


def one_step(model, augment, x, y):
    """One training step on the batch (x, y), traced into the compiled loops of
    `fit_arrays` on one device and in each replica: the augmentation (if any), then the
    model's own `train_step`. Returns a scalar bool tensor: whether the batch's loss is finite.
    """
    import tensorflow as tf

    batch = (x, y) if augment is None else augment(x, y)
    logs = model.train_step(batch)
    if "loss" not in logs:
        return tf.constant(True)
    return tf.reduce_all(tf.math.is_finite(logs["loss"]))


class ReplicatedSteps:
    """The training and evaluation steps of `fit_arrays` under a `tf.distribute` strategy.

    Same interface as the one-device steps in `reuse.training.loop`: `start_epoch(order,
    view)`, then `train(count)` for the next `count` global batches (returns the metric
    results, summed over replicas), `evaluate()` over the validation rows, `reset_metrics()`.
    """

    def __init__(
        self, strategy, model, x_all, y_all, batch_size, *, views, augment, validation, val_batch
    ):
        import tensorflow as tf

        self.strategy, self.model = strategy, model
        self.x_all, self.y_all, self.views, self.augment = x_all, y_all, views, augment
        self.batch_size = batch_size
        self.replicas = strategy.num_replicas_in_sync
        rows = int(y_all.shape[0])
        self.bounds = chunk_bounds(rows, batch_size, self.replicas)
        self.steps = len(self.bounds)
        self.iterator = None

        def replica_step(x, y):
            finite = one_step(model, augment, x, y)
            return tf.cast(tf.logical_not(finite), tf.float32)

        @tf.function
        def train_steps(iterator, count):
            for _ in tf.range(count):
                x, y = next(iterator)
                diverged = strategy.run(replica_step, args=(x, y))
                if strategy.reduce("SUM", diverged, axis=None) > 0.0:
                    break
            return model.get_metrics_result()

        self._train_steps = train_steps
        self._evaluate = None
        if validation is not None:
            val_x, val_y = validation
            val_bounds = chunk_bounds(int(val_y.shape[0]), val_batch, self.replicas)
            val_order = tf.range(int(val_y.shape[0]), dtype=tf.int64)

            @tf.function
            def evaluate(iterator):
                for _ in tf.range(len(val_bounds)):
                    x, y = next(iterator)
                    strategy.run(lambda x, y: model.test_step((x, y)), args=(x, y))
                return model.get_metrics_result()

            self._evaluate = lambda: evaluate(
                iter(self._distribute(val_x, val_y, val_order, val_bounds))
            )

    def _distribute(self, source, targets, order, bounds):
        """A distributed dataset of the chunks: replica r of step s gets rows
        order[bounds[s, r]:bounds[s, r + 1]]."""
        import tensorflow as tf

        replicas = self.replicas

        def per_worker(ctx):
            local = replicas // ctx.num_input_pipelines
            ids = [
                (s, ctx.input_pipeline_id * local + k)
                for s in range(len(bounds))
                for k in range(local)
            ]
            starts = np.array([bounds[s, r] for s, r in ids], dtype=np.int64)
            stops = np.array([bounds[s, r + 1] for s, r in ids], dtype=np.int64)

            def gather(a, b):
                rows = order[a:b]
                return tf.gather(source, rows), tf.gather(targets, rows)

            data = tf.data.Dataset.from_tensor_slices((starts, stops)).map(gather)
            return data.prefetch(tf.data.AUTOTUNE)

        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
        return self.strategy.distribute_datasets_from_function(per_worker, options)

    def start_epoch(self, order: np.ndarray, view: int) -> None:
        import tensorflow as tf

        source = self.x_all[view] if self.views else self.x_all
        dataset = self._distribute(source, self.y_all, tf.constant(order), self.bounds)
        self.iterator = iter(dataset)

    def reset_metrics(self) -> None:
        self.model.reset_metrics()

    def train(self, count: int):
        import tensorflow as tf

        return self._train_steps(self.iterator, tf.constant(count))

    def evaluate(self):
        return None if self._evaluate is None else self._evaluate()


def steps_per_epoch(rows: int, batch_size: int, replicas: int) -> int:
    """Global batches in one epoch of `rows` rows over `replicas` replicas."""
    if replicas <= 1:
        return max(1, math.ceil(rows / batch_size))
    return len(chunk_bounds(rows, batch_size, replicas))
