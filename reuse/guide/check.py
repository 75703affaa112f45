"""Sanity checks before a long run: the first two steps of the practical tuning guide, plus
what the gradients and activations say about the network.

    results = check(base, dataset, FinetuneOptions())
    [r.status for r in results]      # ["pass", "pass", "warn", "pass"]

Each check trains or measures the model as `finetune` would set it up (same cut, fresh head,
frozen layers, optimizer) and leaves the model's weights as they were.

1. initial loss: with regularization off and a freshly initialized head, a classifier of C
   classes should start near ln(C) (its outputs near uniform); far above means overconfident
   initial outputs (feature scale, initialization), far below means the labels leak.
2. overfit a tiny subset: a network that cannot drive the loss on ~20 samples to near zero
   has a bug (labels, loss, frozen layers, learning rate) or too little capacity.
3. gradient norms per layer: vanishing (norm below 1e-7 of the layer's weight norm) or
   exploding (norm above 1e3) gradients.
4. activations: ReLU units that are never active on a batch (dead), sigmoid/tanh units that
   sit at their asymptotes (saturated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

STATUSES = ("pass", "warn", "fail")
VANISHING_RELATIVE = 1e-7
EXPLODING_NORM = 1e3
DEAD_WARN_FRACTION = 0.1
SATURATED_WARN_FRACTION = 0.1
OVERFIT_TARGET = 0.05  # "near zero" for a classification loss


@dataclass
class CheckResult:
    """The outcome of one check: `status` is pass, warn or fail; `reason` says why."""

    name: str
    status: str
    reason: str
    details: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "details": self.details,
        }


def check_arguments(subset: int, steps: int) -> None:
    """Refuse a `subset` below 2 or `steps` below 1 (before any model is loaded).

    Raises:
        UsageError: a value out of range (exit code 2).
    """
    from reuse.core.errors import UsageError

    if subset < 2:
        raise UsageError(f"`subset` must be >= 2. Received: subset={subset}", "e.g. --subset 20")
    if steps < 1:
        raise UsageError(f"`steps` must be >= 1. Received: steps={steps}", "e.g. --steps 300")


def check(
    model,
    data=None,
    options=None,
    *,
    features=None,
    subset: int = 20,
    steps: int = 300,
    batch: int = 128,
) -> list[CheckResult]:
    """Run the four checks on `model` trained as `finetune` would with `options`.

    Example:
        >>> results = check(load_model("base.keras"), load_data("train.npz"), FinetuneOptions())
        >>> any(r.status == "fail" for r in results)
        False

    Args:
        model: the Keras model to reuse (unchanged afterwards).
        data: a Dataset or `(x, y)` arrays; optional when `features` is given.
        options: a `FinetuneOptions` (cut, head, optimizer, lr, unfreeze, seed).
        features: a feature cache made from `model` (the overfit check trains from it).
        subset: rows of the tiny subset to overfit.
        steps: full-batch steps the overfit check may take.
        batch: rows used for the loss, gradient and activation measurements.

    Returns:
        One CheckResult per check: initial_loss, overfit_tiny, gradients, activations.

    Raises:
        UsageError: subset or steps below 1.
        DataError: no labels.
    """
    import keras

    from reuse.training.finetune import prepare
    from reuse.training.lr_range import WeightRestorer
    from reuse.training.options import FinetuneOptions
    from reuse.training.transfer import apply_trainable

    check_arguments(subset, steps)
    options = options or FinetuneOptions()
    # Regularization off: the guide's reference loss ln(C) is the data loss alone.
    plain = replace(options, l1=0.0, l2=0.0, dropout=0.0, label_smoothing=0.0, max_norm=None)
    if plain.seed is not None:
        keras.utils.set_random_seed(plain.seed)
    restorer = WeightRestorer(model)
    try:
        run = prepare(model, data, features=features, options=plain)
        apply_trainable(run.transfer, run.trainable, train_bn=plain.train_bn)
        x_all, y_all = (
            run.inputs.train(None) if run.inputs.x is not None else run.inputs.train(run.tap)
        )
        tap_for_measure = None if run.inputs.x is not None else run.tap
        rows = _sample(len(y_all), batch, plain.seed)
        measure_model = (
            run.transfer.model
            if tap_for_measure is None
            else _top(run.transfer.model, tap_for_measure)
        )
        xb, yb = x_all[rows], y_all[rows]
        results = [
            initial_loss(measure_model, run.transfer, xb, yb),
            gradient_norms(measure_model, run.transfer, xb, yb),
            activations(measure_model, run.transfer, xb),
        ]
        # Last, because it trains: the other checks see the freshly initialized head.
        results.insert(1, overfit_tiny(run, plain, subset=subset, steps=steps))
    finally:
        restorer.restore()
    return results


def _top(model, tap):
    from reuse.surgery import cuts

    return cuts.top_model(model, tap)


def _sample(n: int, k: int, seed: int | None) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _loss_value(loss_fn, y, outputs) -> float:
    return float(np.asarray(loss_fn(y, outputs)))


def _forward(model, x):
    """model(x) in inference mode, without Keras' warning about a one-input list structure."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        return model(x, training=False)


def reference_loss(transfer, y: np.ndarray) -> tuple[float | None, str]:
    """The loss an untrained model should start near, and how it is derived."""
    n_out = int(transfer.model.outputs[0].shape[-1])
    if transfer.task == "multiclass":
        return math.log(n_out), f"ln({n_out})"
    if transfer.task == "binary":
        # A sigmoid near 0.5 gives ln 2 whatever the class balance.
        return math.log(2), "ln(2)"
    return None, "variance"


def initial_loss(model, transfer, x, y) -> CheckResult:
    """Step 1: the loss of the freshly initialized head vs ln(C), regularization off."""
    outputs = _forward(model, x)
    loss = _loss_value(transfer.loss, y, outputs)
    expected, label = reference_loss(transfer, y)
    details = {"loss": loss, "expected": expected, "rows": int(len(y))}
    if not math.isfinite(loss):
        return CheckResult(
            "initial_loss",
            "fail",
            f"the initial loss is {loss}: the inputs or the weights hold NaN/Inf",
            details,
        )
    if expected is None:
        variance = float(np.var(np.asarray(y, dtype=float)))
        details["expected"] = variance
        if loss > 10 * max(variance, 1e-12):
            return CheckResult(
                "initial_loss",
                "warn",
                f"initial loss {loss:.4g} is over 10x the targets' variance {variance:.4g}: scale the targets or the features",
                details,
            )
        return CheckResult(
            "initial_loss",
            "pass",
            f"initial loss {loss:.4g} vs variance of the targets {variance:.4g}",
            details,
        )
    ratio = loss / expected
    details["ratio"] = ratio
    text = f"initial loss {loss:.4f} vs {label} = {expected:.4f} (x{ratio:.2f})"
    if ratio > 3:
        return CheckResult(
            "initial_loss",
            "fail",
            text
            + ": the fresh head is far too confident — features too large or a bad initialization",
            details,
        )
    if ratio > 1.5:
        return CheckResult(
            "initial_loss",
            "warn",
            text + ": the fresh head starts overconfident — check the feature scale",
            details,
        )
    if ratio < 0.8:
        return CheckResult(
            "initial_loss",
            "warn",
            text + ": lower than chance before training — do the labels leak into the inputs?",
            details,
        )
    return CheckResult("initial_loss", "pass", text, details)


def overfit_tiny(run, options, *, subset: int = 20, steps: int = 300) -> CheckResult:
    """Step 2: train on `subset` rows, full batch, and see the loss get close to zero."""
    from reuse.training import optimizers
    from reuse.training.options import default_lr
    from reuse.training.stage import sample_augmenter

    x, y = run.inputs.train(run.tap)
    rows = _stratified(y, subset, options.seed)
    xs, ys = x[rows], y[rows]
    train_model = run.train_model()
    # A tiny subset tolerates a bolder rate; the point is capacity, not generalization.
    lr = options.lr or 10 * default_lr(options.optimizer)
    factory = optimizers.optimizer_factory(
        options.optimizer, clipnorm=options.clip_norm, clipvalue=options.clip_value
    )
    train_model.compile(optimizer=factory(lr), loss=run.transfer.loss)
    first = _loss_value(run.transfer.loss, ys, _forward(train_model, xs))
    regression = run.transfer.task == "regression"
    target = OVERFIT_TARGET * first if regression else OVERFIT_TARGET
    losses = []
    augment = sample_augmenter(options, xs) if run.tap is None else None
    for _ in range(steps):
        xb = xs if augment is None else np.asarray(augment(xs)[0])
        loss = float(np.asarray(train_model.train_on_batch(xb, ys)).reshape(-1)[0])
        losses.append(loss)
        if not math.isfinite(loss) or loss < target:
            break
    final = _loss_value(run.transfer.loss, ys, _forward(train_model, xs))
    details = {
        "rows": int(len(rows)),
        "steps": len(losses),
        "lr": lr,
        "first": first,
        "final": final,
        "target": target,
    }
    if not math.isfinite(final) or not all(math.isfinite(v) for v in losses):
        return CheckResult(
            "overfit_tiny",
            "fail",
            f"the loss became NaN/Inf while overfitting {len(rows)} rows at lr {lr:g}: lower --lr",
            details,
        )
    text = f"loss on {len(rows)} rows went {first:.4f} → {final:.4f} in {len(losses)} steps (lr {lr:g})"
    if final <= target:
        return CheckResult("overfit_tiny", "pass", text, details)
    if final < 0.5 * first:
        return CheckResult(
            "overfit_tiny",
            "warn",
            text
            + f", not below {target:.3g}: more steps (--steps), a higher --lr, or a larger head",
            details,
        )
    return CheckResult(
        "overfit_tiny",
        "fail",
        text
        + ": the model cannot fit even a tiny sample — check labels, loss and which layers train; try a higher --lr or a larger head",
        details,
    )


def _stratified(y: np.ndarray, k: int, seed: int | None) -> np.ndarray:
    """About k rows with every class represented (round-robin over classes)."""
    n = len(y)
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    labels = np.asarray(y).reshape(n, -1)
    if labels.shape[1] != 1 or not np.issubdtype(labels.dtype, np.integer):
        return np.sort(rng.choice(n, size=k, replace=False))
    groups = [
        rng.permutation(np.flatnonzero(labels[:, 0] == c)).tolist() for c in np.unique(labels[:, 0])
    ]
    chosen: list[int] = []
    while len(chosen) < k:
        for g in groups:
            if g and len(chosen) < k:
                chosen.append(g.pop())
    return np.sort(np.asarray(chosen))


def gradient_norms(model, transfer, x, y) -> CheckResult:
    """Step 3: the gradient norm of every layer with weights (frozen ones too: they may be
    unfrozen later), flagging vanishing and exploding ones."""
    import tensorflow as tf

    from reuse.surgery.layer_tree import leaves

    layers = [(e.path, e.layer) for e in leaves(model) if e.layer.weights]
    variables = [(path, v) for path, layer in layers for v in layer.weights if _is_parameter(v)]
    with tf.GradientTape() as tape:
        watched = [v.value for _, v in variables]
        tape.watch(watched)
        loss = transfer.loss(y, _forward(model, x))
    grads = tape.gradient(loss, watched)
    per_layer: dict[str, dict] = {}
    for (path, var), grad in zip(variables, grads, strict=True):
        g = 0.0 if grad is None else float(np.sum(np.square(np.asarray(grad, dtype=np.float64))))
        w = float(np.sum(np.square(np.asarray(var.numpy(), dtype=np.float64))))
        entry = per_layer.setdefault(path, {"layer": path, "grad_norm": 0.0, "weight_norm": 0.0})
        entry["grad_norm"] += g
        entry["weight_norm"] += w
    rows = []
    vanishing, exploding = [], []
    for entry in per_layer.values():
        entry["grad_norm"] = (
            math.sqrt(entry["grad_norm"]) if math.isfinite(entry["grad_norm"]) else float("inf")
        )
        entry["weight_norm"] = math.sqrt(entry["weight_norm"])
        entry["relative"] = entry["grad_norm"] / max(entry["weight_norm"], 1e-12)
        flag = ""
        if not math.isfinite(entry["grad_norm"]) or entry["grad_norm"] > EXPLODING_NORM:
            flag = "exploding"
            exploding.append(entry["layer"])
        elif entry["relative"] < VANISHING_RELATIVE:
            flag = "vanishing"
            vanishing.append(entry["layer"])
        entry["flag"] = flag
        entry["trainable"] = bool(dict(layers)[entry["layer"]].trainable)
        rows.append(entry)
    details = {"layers": rows}
    if exploding:
        return CheckResult(
            "gradients",
            "fail",
            f"exploding gradients (norm > {EXPLODING_NORM:g}) in {', '.join(exploding)}: clip them (--clip-norm 1) or lower the learning rate",
            details,
        )
    if vanishing:
        return CheckResult(
            "gradients",
            "warn",
            f"vanishing gradients (< {VANISHING_RELATIVE:g} of the weight norm) in {', '.join(vanishing)}: those layers will barely learn if unfrozen",
            details,
        )
    norms = [r["grad_norm"] for r in rows]
    text = (
        f"{len(rows)} layers, gradient norms {min(norms):.2g} .. {max(norms):.2g}"
        if rows
        else "no layer has weights"
    )
    return CheckResult("gradients", "pass", text, details)


def _is_parameter(variable) -> bool:
    # Moving statistics of BatchNormalization get no gradient by design.
    name = variable.path.rsplit("/", 1)[-1]
    return not name.startswith("moving_")


_ACTIVATION_KINDS = {
    "relu": "relu",
    "relu6": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "hard_sigmoid": "sigmoid",
}


def _activation_kind(layer) -> str | None:
    cls = type(layer).__name__
    if cls == "ReLU":
        return "relu"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (
        activation if isinstance(activation, str) else None
    )
    return _ACTIVATION_KINDS.get(name) if name else None


def activations(model, transfer, x) -> CheckResult:
    """Step 4: dead ReLU units and saturated sigmoid/tanh units on one batch.

    A ReLU unit (a channel, for feature maps) is dead when it is never positive on the batch.
    A sigmoid/tanh unit is saturated when over 90% of its outputs sit within 1% of an
    asymptote. The model's output layer is left out: a confident output is its job.
    """
    import keras

    from reuse.surgery import cuts

    graph = cuts.trace(model)
    output_ids = {id(t) for t in graph.outputs}
    watched = []
    for call in graph.calls:
        kind = _activation_kind(call.layer)
        if kind is None or any(id(t) in output_ids for t in call.outputs):
            continue
        watched.append((call.path, kind, call.outputs[0]))
    if not watched:
        return CheckResult(
            "activations",
            "pass",
            "no ReLU, sigmoid or tanh layers below the output",
            {"layers": []},
        )
    inputs = graph.inputs if len(graph.inputs) > 1 else graph.inputs[0]
    probe = keras.Model(inputs, [t for _, _, t in watched])
    values = _forward(probe, x)
    values = values if isinstance(values, list | tuple) else [values]
    rows, dead_all, dead_some, saturated = [], [], [], []
    for (path, kind, _), value in zip(watched, values, strict=True):
        a = np.asarray(value, dtype=np.float32).reshape(-1, np.asarray(value).shape[-1])
        units = a.shape[-1]
        if kind == "relu":
            dead = int(np.sum(~np.any(a > 0, axis=0)))
            fraction = dead / units
            rows.append(
                {"layer": path, "kind": kind, "units": units, "dead": dead, "fraction": fraction}
            )
            if dead == units:
                dead_all.append(path)
            elif fraction > DEAD_WARN_FRACTION:
                dead_some.append(f"{path} ({dead}/{units})")
        else:
            lo, hi = (-1.0, 1.0) if kind == "tanh" else (0.0, 1.0)
            margin = 0.01 * (hi - lo)
            at_edge = (a < lo + margin) | (a > hi - margin)
            count = int(np.sum(np.mean(at_edge, axis=0) > 0.9))
            fraction = count / units
            rows.append(
                {
                    "layer": path,
                    "kind": kind,
                    "units": units,
                    "saturated": count,
                    "fraction": fraction,
                }
            )
            if fraction > SATURATED_WARN_FRACTION:
                saturated.append(f"{path} ({count}/{units})")
    details = {"layers": rows, "rows": int(len(x))}
    if dead_all:
        return CheckResult(
            "activations",
            "fail",
            f"every ReLU unit of {', '.join(dead_all)} is dead on {len(x)} rows: nothing passes through — reinitialize, or lower the learning rate that killed them",
            details,
        )
    problems = []
    if dead_some:
        problems.append(
            f"dead ReLU units in {', '.join(dead_some)} (try leaky_relu/elu or a lower lr)"
        )
    if saturated:
        problems.append(
            f"saturated units in {', '.join(saturated)} (scale the inputs, or use batchnorm)"
        )
    if problems:
        return CheckResult("activations", "warn", "; ".join(problems), details)
    return CheckResult(
        "activations",
        "pass",
        f"{len(rows)} layers: no dead ReLU units, no saturated sigmoid/tanh units",
        details,
    )
