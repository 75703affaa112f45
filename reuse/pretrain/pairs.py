"""Pretraining on an auxiliary task with cheap labels: "are these two rows of the same class?".

A siamese network: two copies of one tower (shared weights, `reuse.pretrain.encoder`) read
the two rows of a pair; their outputs meet (`concat`, as in Géron's ch. 11 exercise 10, or
`absdiff`, |a - b|), then Dense(10, elu) and one sigmoid unit say "same class". The tower is
the base. Pairs are drawn from a labelled set, balanced (half same class, half not) and
seeded (`draw_pairs`); only whether two labels are equal is used, so weak labels (groups,
sessions, sources) work as well as classes.

A pair is two row indices, not two rows: the network looks the rows up in the data inside the
training step (`_RowLookup`), so a million pairs cost 16 MB, not two copies of the images.
Validation pairs are drawn from the validation rows only, so no image is seen on both sides.

Augmentation (`augment`): inside the training step, after the rows are looked up, the two
rows of every pair are augmented independently (each row of the batch draws its own
transformation, `_pair_augmenter`); validation pairs and the saved tower see clean rows.
"""

from __future__ import annotations

import numpy as np

from reuse.core import report
from reuse.core.errors import DataError
from reuse.pretrain.options import PretrainOptions, merge_options
from reuse.pretrain.run import (
    PretrainResult,
    final_metrics,
    require_resumable,
    row_augmenter,
    split_rows,
    train_network,
)


def draw_pairs(labels: np.ndarray, n: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs of row indices and whether their labels are equal.

    Half the pairs (n // 2) join two rows of one class, the rest two rows of different
    classes; the first row of each is drawn uniformly, the second uniformly among the rows
    that make the pair what it must be (another row than the first when its class has one).
    The order is shuffled. The same (labels, n, seed) give the same pairs.

    Returns:
        (pairs of shape (n, 2), int64; same of shape (n,), float32 1.0 / 0.0).

    Raises:
        DataError: fewer than two classes, or no class with two rows.
    """
    labels = np.asarray(labels).reshape(len(labels), -1)
    labels = labels[:, 0] if labels.shape[1] == 1 else np.argmax(labels, axis=1)
    classes, codes = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(codes == c) for c in range(len(classes))]
    if len(classes) < 2:
        raise DataError(
            f"pairs need rows of at least two classes; the labels hold {len(classes)}",
            "pass a labelled set with several classes",
        )
    if max(len(m) for m in members) < 2:
        raise DataError(
            "no class has two rows, so no 'same class' pair can be drawn",
            "pass more rows per class",
        )
    rng = np.random.default_rng(seed)
    n_same = n // 2
    # "same" pairs start from a row of a class with two rows or more; "different" from any row.
    pool = np.concatenate([m for m in members if len(m) > 1])
    first = np.concatenate([rng.choice(pool, n_same), rng.integers(0, len(labels), n - n_same)])
    second = np.empty(n, dtype=np.int64)
    same = np.arange(n) < n_same
    everyone = np.arange(len(labels))
    for c, rows in enumerate(members):
        mine = codes[first] == c
        anchors = np.flatnonzero(mine & same)
        if len(anchors):  # another row of the class: skip the anchor's own position
            j = rng.integers(0, len(rows) - 1, len(anchors))
            second[anchors] = rows[j + (j >= np.searchsorted(rows, first[anchors]))]
        anchors = np.flatnonzero(mine & ~same)
        if len(anchors):
            others = np.setdiff1d(everyone, rows, assume_unique=True)
            second[anchors] = others[rng.integers(0, len(others), len(anchors))]
    order = rng.permutation(n)
    pairs = np.stack([first, second], axis=1).astype(np.int64)
    return pairs[order], same.astype(np.float32)[order]


def _row_lookup(table: np.ndarray):
    """A layer that turns (batch, 2) row indices into (batch, 2, *row) rows of `table`.

    The table is a constant of the training step, not a weight: checkpoints stay small and
    the saved tower never holds it.
    """
    import keras

    class _RowLookup(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(name="pair_rows", **kwargs)
            self.table = keras.ops.convert_to_tensor(table)

        def call(self, indices):
            return keras.ops.take(self.table, keras.ops.cast(indices, "int32"), axis=0)

        def compute_output_shape(self, input_shape):
            return (*input_shape, *table.shape[1:])

    return _RowLookup()


def _pair_augmenter(augmenter, row_shape: tuple):
    """A layer that augments (batch, 2, *row) pairs of rows while training, as is otherwise.

    The 2 * batch rows go through `augmenter` (a `reuse.augment.pipeline.Augmenter`) as one
    batch, so the two rows of a pair get independent transformations. The augmenter is kept
    out of Keras' tracking: its random layers are not part of the network, its checkpoints or
    its weights (`fit_arrays` reseeds it per epoch through `_Reseed`).
    """
    import keras

    class _PairAugment(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(name="pair_augment", **kwargs)
            object.__setattr__(self, "_augment", augmenter)  # untracked

        def call(self, rows, training=None):
            if not training:
                return rows
            flat = keras.ops.reshape(rows, (-1, *row_shape))
            augmented = self._augment(flat, training=True)[0]
            return keras.ops.reshape(augmented, (-1, 2, *row_shape))

        def compute_output_shape(self, input_shape):
            return input_shape

    return _PairAugment()


def _reseed_callback(augmenter):
    """A Keras callback that puts `augmenter` in the state fixed by (seed, epoch) at the start
    of every epoch, as `fit_arrays` does for the augmenter it is given: a resumed run draws
    what an uninterrupted one would."""
    import keras

    class _Reseed(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            augmenter.reseed(epoch)

    return _Reseed()


def build_siamese(
    tower,
    table: np.ndarray,
    combine: str = "concat",
    seed: int | None = None,
    augmenter=None,
):
    """The siamese network on `tower`: (batch, 2) row indices into `table` -> P(same class).

    Both rows go through the same `tower` (one set of weights). Their outputs (flattened when
    they are feature maps) are concatenated (`concat`) or subtracted (`absdiff`: |a - b|),
    then Dense(10, elu, he_normal) and Dense(1, sigmoid). With `augmenter` (an Augmenter for
    rows of `table`), each row of a pair is augmented on its own while training.
    """
    import keras

    pair = keras.Input(shape=(2,), dtype="int32", name="pair")
    rows = _row_lookup(table)(pair)
    if augmenter is not None:
        rows = _pair_augmenter(augmenter, tuple(table.shape[1:]))(rows)
    outputs = []
    for side in (0, 1):
        code = tower(rows[:, side])
        if len(code.shape) > 2:
            code = keras.layers.Flatten(name=f"flatten{side}")(code)
        outputs.append(code)
    if combine == "concat":
        joined = keras.layers.Concatenate(name="joined")(outputs)
    else:
        joined = keras.ops.abs(keras.layers.Subtract(name="difference")(outputs))
    hidden = keras.layers.Dense(
        10,
        activation="elu",
        kernel_initializer=keras.initializers.HeNormal(seed=seed),
        name="pair_hidden",
    )(joined)
    same = keras.layers.Dense(1, activation="sigmoid", name="same")(hidden)
    return keras.Model(pair, same, name="siamese")


def pretrain_pairs(
    data,
    *,
    val=None,
    options: PretrainOptions | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    callbacks=(),
    **kwargs,
) -> PretrainResult:
    """Train a siamese network on "same class?" pairs drawn from `data`; return its tower.

    Example:
        >>> result = pretrain_pairs(reuse.load_data("mnist/"), layers=(100,) * 5, pairs=100_000)
        >>> result.save("tower.keras")

    Args:
        data: a labelled `reuse.data.dataset.Dataset`, or an (x, y) pair.
        val: labelled validation data; else `options.val_split` of the rows, if set.
            Validation pairs (a tenth of `options.pairs`, at least 100) come from it alone.
        options: a PretrainOptions (`layers`, `pairs`, `combine`, `augment`, ...); keyword
            arguments override its fields. With `augment`, each row of a training pair is
            augmented on its own, inside the training step.
        checkpoint_dir, resume: as `finetune`'s --checkpoint-dir / --resume.
        callbacks: more Keras callbacks.

    Returns:
        PretrainResult whose `base` is the tower (input: one row as given; output: its code).

    Raises:
        DataError: no labels, fewer than two classes, no class with two rows.
        UsageError: bad options; --resume without a checkpoint or with other options; an
            image augmentation on flat rows without `image_shape` (as in `finetune`).
        TrainingDiverged: the loss was NaN or Inf from the first epoch.
    """
    import keras

    from reuse.pretrain.encoder import build_encoder, encoder_blocks, prepare_rows

    options = merge_options(options, kwargs)
    if resume:
        require_resumable(checkpoint_dir)
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    x, y = _labelled(data, "--data")
    vx = vy = None
    if val is not None:
        vx, vy = _labelled(val, "--val")
    elif options.val_split:
        train_rows, val_rows = split_rows(len(x), options.val_split, options.seed)
        x, y, vx, vy = x[train_rows], y[train_rows], x[val_rows], y[val_rows]
    x, input_shape, arch = prepare_rows(x, options)
    augmenter = row_augmenter(options, x)  # fails here when the spec does not fit the rows
    table = x
    pairs, same = draw_pairs(y, options.pairs, options.seed)
    validation = None
    if vx is not None:
        vx = prepare_rows(vx, options)[0].reshape((len(vx), *input_shape))
        val_pairs, val_same = draw_pairs(
            vy, max(100, options.pairs // 10), None if options.seed is None else options.seed + 1
        )
        table = np.concatenate([x, vx])
        validation = (val_pairs + len(x), val_same[:, None])
    tower = build_encoder(encoder_blocks(options, input_shape, arch), input_shape, name="tower")
    siamese = build_siamese(tower, table, options.combine, options.seed, augmenter)
    report.info(
        f"pairs: {len(pairs)} drawn from {len(x)} rows of {len(np.unique(y, axis=0))} classes, half of them 'same class'"
    )
    history: list[dict] = []
    stage = train_network(
        siamese,
        pairs,
        same[:, None],
        val=validation,
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        options=options,
        kind="pairs",
        history=history,
        description="siamese",
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        callbacks=[*callbacks, *([_reseed_callback(augmenter)] if augmenter is not None else [])],
    )
    return PretrainResult(
        base=tower,
        kind="pairs",
        history=history,
        stages=[stage],
        metrics=final_metrics(history, [stage], options),
        options=options,
        rows=len(pairs),
        extra={"arch": arch, "combine": options.combine},
    )


def _labelled(data, flag: str) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "arrays"):
        x, y = data.arrays()
    else:
        x, y = data
    if y is None:
        raise DataError(
            f"{flag} has no labels, and pairs are drawn from labelled rows",
            "pass labels (--labels, --y-key, --label-col), or use `reuse pretrain autoencoder`",
        )
    x = np.asarray(x, dtype=np.float32)
    if len(x) != len(y) or len(x) < 2:
        raise DataError(
            f"{flag}: {len(x)} rows and {len(y)} labels", "pass at least two labelled rows"
        )
    return x, np.asarray(y)
