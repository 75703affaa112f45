"""Evaluate a model on labelled data, and write predictions.

The loss follows the labels (SPEC "Data"): integers → sparse categorical cross-entropy (or
binary cross-entropy for a single sigmoid output), floats → mean squared error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import DataError, OutputError


@dataclass
class TTA:
    """Test-time augmentation: average the outputs over `k` augmented views plus the clean
    input (`reuse.augment.tta_predict`). `spec` is an `--augment` spec (mixup and cutmix are
    dropped), `image_shape` the (H, W, C) flat rows are viewed as, `seed` fixes the views."""

    spec: str
    k: int
    image_shape: tuple | None = None
    seed: int = 0

    def check(self) -> None:
        """Raises UsageError for k < 1 or a spec with no per-row augmentation."""
        from reuse.augment.spec import parse_augment
        from reuse.core.errors import UsageError

        if self.k < 1:
            raise UsageError(f"--tta must be >= 1. Received: {self.k}", "e.g. --tta 8")
        if not parse_augment(self.spec).per_sample():
            raise UsageError(
                f"--tta needs an augmentation of single rows. Received: --augment {self.spec} "
                "(mixup and cutmix mix rows of a batch, which means nothing at test time)",
                "e.g. --augment digits --tta 8",
            )


@dataclass
class Evaluation:
    """Loss and accuracy of a model on labelled data.

    Attributes:
        rows: rows evaluated. loss: mean loss (`loss_name`). accuracy: top-1 accuracy in
        [0, 1] (None for regression). per_class: precision, recall and support per class.
        confusion: the confusion matrix (rows: true class). tta: the same Evaluation with
        test-time augmentation, when asked for.
    """

    rows: int
    loss: float
    loss_name: str
    accuracy: float | None
    per_class: list[dict] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    tta: Evaluation | None = None

    def metrics(self) -> dict:
        """{"loss", "rows", "accuracy"} and, with test-time augmentation, "loss_tta" and
        "accuracy_tta"."""
        out = {"loss": self.loss, "rows": self.rows}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        if self.tta is not None:
            out["loss_tta"] = self.tta.loss
            if self.tta.accuracy is not None:
                out["accuracy_tta"] = self.tta.accuracy
        return out


def check_batch_size(batch_size: int) -> None:
    """Refuse a `--batch-size` below 1 (before any model is loaded).

    Raises:
        UsageError: batch_size < 1 (exit code 2).
    """
    from reuse.core.errors import UsageError

    if batch_size < 1:
        raise UsageError(
            f"`--batch-size` must be >= 1. Received: batch_size={batch_size}",
            "e.g. --batch-size 256",
        )


def predict_array(model, data, batch_size: int = 256, tta: TTA | None = None) -> np.ndarray:
    """Model outputs for every row of `data` (a Dataset or an array), computed in batches.

    Returns an array (N, *output shape). With `tta`, each row's output is the mean over the
    clean row and `tta.k` augmented views of it.

    Raises:
        DataError: no rows, or rows whose shape does not fit the model (`reuse.data.shapes`).
        UsageError: batch_size < 1.
    """
    from reuse.data.shapes import fit_input_shape

    check_batch_size(batch_size)

    if tta is not None:
        from reuse.augment.tta import tta_predict

        x = data if isinstance(data, np.ndarray) else data.arrays()[0]
        if len(x) == 0:
            raise DataError(
                f"{getattr(data, 'path', 'data')}: no rows to predict", "check the selection flags"
            )
        from reuse.augment.spec import implied_image_shape

        source_shape = np.shape(x)[1:]
        x = fit_input_shape(
            np.asarray(x, dtype=np.float32), model, source=getattr(data, "path", "data")
        )
        # image rows flattened for the model are augmented as the images they were
        image_shape = tta.image_shape or implied_image_shape(source_shape, x.shape[1:])
        return tta_predict(model, x, tta.spec, tta.k, image_shape, tta.seed, batch_size)

    if isinstance(data, np.ndarray):
        return np.asarray(
            model.predict(
                fit_input_shape(data.astype(np.float32), model), batch_size=batch_size, verbose=0
            )
        )
    outputs = []
    for _, xb, _ in data.batches(batch_size):
        xb = fit_input_shape(xb, model, source=getattr(data, "path", "data"))
        outputs.append(np.asarray(model.predict_on_batch(xb)))
    if not outputs:
        raise DataError(
            f"{getattr(data, 'path', 'data')}: no rows to predict", "check the selection flags"
        )
    return np.concatenate(outputs)


def evaluate(model, data, *, batch_size: int = 256, tta: TTA | None = None) -> Evaluation:
    """Loss, accuracy and a per-class summary (precision, recall, support) of `model` on `data`;
    with `tta`, also the same figures with test-time augmentation (`Evaluation.tta`).

    Example:
        >>> ev = evaluate(reuse.load_model("tuned.keras"), reuse.load_data("test.npz"))
        >>> ev.accuracy

    Raises:
        DataError: the data has no labels, or labels that do not fit the model's outputs.
    """
    y = data.y if hasattr(data, "y") else None
    if y is None:
        raise DataError(
            f"{getattr(data, 'path', 'data')} has no labels to evaluate against",
            "pass labelled data",
        )
    result = _score(predict_array(model, data, batch_size), np.asarray(y))
    if tta is not None:
        result.tta = _score(predict_array(model, data, batch_size, tta), np.asarray(y))
    return result


def _score(probs: np.ndarray, y: np.ndarray) -> Evaluation:
    n_out = probs.shape[-1] if probs.ndim > 1 else 1
    integer = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
    eps = 1e-7
    if integer and n_out > 1:
        labels = y.reshape(-1).astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_out:
            raise DataError(
                f"labels range over {labels.min()}..{labels.max()} but the model has {n_out} outputs",
                "select matching classes (--classes) or evaluate the model trained for these labels",
            )
        p = np.clip(probs[np.arange(len(labels)), labels], eps, 1.0)
        loss, loss_name = float(-np.mean(np.log(p))), "sparse_categorical_crossentropy"
        predicted = probs.argmax(axis=-1)
        return _classification(labels, predicted, n_out, loss, loss_name)
    if integer or (n_out == 1 and set(np.unique(y).tolist()) <= {0, 1}):
        labels = y.reshape(-1).astype(np.int64)
        p1 = np.clip(probs.reshape(-1), eps, 1 - eps)
        loss = float(-np.mean(labels * np.log(p1) + (1 - labels) * np.log(1 - p1)))
        predicted = (p1 >= 0.5).astype(np.int64)
        return _classification(labels, predicted, 2, loss, "binary_crossentropy")
    target = y.reshape(probs.shape) if y.size == probs.size else None
    if target is None:
        raise DataError(
            f"targets of shape {y.shape} do not fit outputs of shape {probs.shape}", "check --data"
        )
    return Evaluation(
        rows=len(y), loss=float(np.mean((probs - target) ** 2)), loss_name="mse", accuracy=None
    )


def _classification(labels, predicted, k, loss, loss_name) -> Evaluation:
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for c in range(k):
        support = int(confusion[c].sum())
        predicted_c = int(confusion[:, c].sum())
        tp = int(confusion[c, c])
        per_class.append(
            {
                "class": c,
                "support": support,
                "precision": tp / predicted_c if predicted_c else 0.0,
                "recall": tp / support if support else 0.0,
            }
        )
    return Evaluation(
        rows=int(len(labels)),
        loss=loss,
        loss_name=loss_name,
        accuracy=float(np.mean(labels == predicted)),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


def check_predictions_output(output: str | Path) -> None:
    """Refuse a predictions path that is neither .npy nor .csv (before any work is done).

    Raises:
        OutputError: another extension.
    """
    out = Path(output)
    if out.suffix.lower() not in (".npy", ".csv"):
        raise OutputError(
            f"cannot write predictions as '{out.name}'", "use -o preds.npy or -o preds.csv"
        )


def predict(
    model,
    data,
    output,
    *,
    batch_size: int = 256,
    class_map: dict | None = None,
    tta: TTA | None = None,
) -> Path:
    """Write predictions for every row of `data` to `output` (.npy: the raw outputs; .csv:
    the outputs plus the predicted class, in the original label values when a class map is known).
    With `tta`, each output is averaged over the clean row and `tta.k` augmented views.
    """
    from reuse.core.atomic import atomic_path

    out = Path(output)
    check_predictions_output(out)
    probs = predict_array(model, data, batch_size, tta)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, probs)
        else:
            _write_csv(tmp, probs, class_map, getattr(data, "indices", None))
    return out


def _write_csv(path, probs, class_map, indices) -> None:
    import csv

    probs2 = probs.reshape(len(probs), -1)
    inverse = {int(v): int(k) for k, v in (class_map or {}).items()}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        header = ["row"] + [f"p{i}" for i in range(probs2.shape[1])]
        classify = probs2.shape[1] > 1 or (
            probs2.shape[1] == 1 and probs2.min() >= 0 and probs2.max() <= 1
        )
        if classify:
            header.append("class")
        writer.writerow(header)
        for i, p in enumerate(probs2):
            row = [int(indices[i]) if indices is not None else i] + [f"{v:.6g}" for v in p]
            if classify:
                c = int(p.argmax()) if len(p) > 1 else int(p[0] >= 0.5)
                row.append(inverse.get(c, c))
            writer.writerow(row)
