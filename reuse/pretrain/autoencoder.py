"""Unsupervised pretraining: an autoencoder on unlabeled rows; its encoder becomes the base.

Two ways to train it (`PretrainOptions.mode`):

- **end-to-end** (the default): the whole autoencoder (encoder, then the mirrored decoder)
  trains at once to reconstruct its inputs. With ELU/ReLU units, He initialization and Adam
  a few-layer autoencoder trains well this way (Géron, ch. 17), in one run, and every
  layer learns what helps the final reconstruction.
- **stacked** (greedy layer-wise, Hinton & Salakhutdinov 2006; Bengio et al. 2007): level k
  is a shallow autoencoder that learns to reconstruct the codes of level k-1 (level 1: the
  inputs); its encoder layer is kept and the next level trains on its codes. It was how deep
  autoencoders were trained before those tricks; it still helps a deep encoder that will not
  train end-to-end, at the price of one run per layer.

Denoising: Gaussian noise (`noise`, its std) and/or dropout (`dropout`, a rate) on the inputs
while training (each level's inputs when stacked); the target stays the clean input (Vincent
et al. 2008). Augmenting (`augment`, an `--augment` spec): the same rule, with the augmenter
of `finetune` as the corruption: each training batch is augmented inside the training step
and the autoencoder reconstructs the clean rows from it (a denoising autoencoder's objective,
L(x, g(f(x~))) with x~ ~ q(x~ | x); Sundermeyer et al. 2018 train their "augmented
autoencoder" the same way, so the code becomes invariant to the augmentations). With
`stacked`, only level 1 (the raw rows) is augmented: the codes above are not images.
Sparse code: an L1 penalty (`sparsity`) on the top encoder layer's outputs. Noise, dropout,
the penalty and the augmentation live in training only: the saved encoder has none of them.

The decoder's last layer is sigmoid when every input lies in [0, 1] (pixels), else linear
(inner levels of a stacked autoencoder reconstruct codes: linear); the loss is the mean
squared error.
"""

from __future__ import annotations

import numpy as np

from reuse.core import report
from reuse.pretrain.options import PretrainOptions, merge_options
from reuse.pretrain.run import (
    PretrainResult,
    final_metrics,
    level_folder,
    require_resumable,
    row_augmenter,
    split_rows,
    train_network,
)


def _noise_layers(options: PretrainOptions, suffix: str = ""):
    import keras

    layers = []
    if options.noise:
        layers.append(
            keras.layers.GaussianNoise(options.noise, seed=options.seed, name=f"noise{suffix}")
        )
    if options.dropout:
        layers.append(
            keras.layers.Dropout(options.dropout, seed=options.seed, name=f"input_dropout{suffix}")
        )
    return layers


def _sparsity(options: PretrainOptions):
    import keras

    return (
        [keras.layers.ActivityRegularization(l1=options.sparsity, name="code_l1")]
        if options.sparsity
        else []
    )


def pretrain_autoencoder(
    data,
    *,
    val=None,
    options: PretrainOptions | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    callbacks=(),
    **kwargs,
) -> PretrainResult:
    """Train an autoencoder on `data`'s inputs (labels ignored); return its encoder as the base.

    Example:
        >>> result = pretrain_autoencoder(reuse.load_data("unlabeled.npz"), layers=(300, 150))
        >>> result.save("base.keras")

    Args:
        data: a `reuse.data.dataset.Dataset`, or an array of rows (N, ...).
        val: validation rows (Dataset or array); else `options.val_split` of the rows, if set.
            Never augmented.
        options: a PretrainOptions; keyword arguments override its fields. With `augment`,
            the training inputs are augmented and the clean rows are the targets.
        checkpoint_dir: checkpoint after every epoch (stacked: one sub-folder per level).
        resume: continue the run checkpointed in `checkpoint_dir`.
        callbacks: more Keras callbacks for every network trained.

    Returns:
        PretrainResult whose `base` is the encoder (input: the rows as given; output: the code).

    Raises:
        UsageError: bad options, --resume without a checkpoint or with other options; an
            image augmentation on flat rows without `image_shape` (as in `finetune`).
        DataError: no rows, or too few to hold out validation rows.
        TrainingDiverged: the loss was NaN or Inf from the first epoch.
    """
    import keras

    from reuse.pretrain.encoder import (
        block_input_shapes,
        build_encoder,
        chain,
        decoder_block,
        encoder_blocks,
        prepare_rows,
    )

    options = merge_options(options, kwargs)
    if resume:
        require_resumable(checkpoint_dir, options.mode)
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    x, vx = _rows(data), None if val is None else _rows(val)
    if vx is None and options.val_split:
        train_rows, val_rows = split_rows(len(x), options.val_split, options.seed)
        x, vx = x[train_rows], x[val_rows]
    x, input_shape, arch = prepare_rows(x, options)
    row_augmenter(options, x)  # a spec that does not fit the rows fails before any training
    if vx is not None:
        vx = prepare_rows(vx, options)[0].reshape((len(vx), *input_shape))
    output_activation = "sigmoid" if float(x.min()) >= 0 and float(x.max()) <= 1 else None
    blocks = encoder_blocks(options, input_shape, arch)
    shapes = block_input_shapes(blocks, input_shape)
    history: list[dict] = []
    stages = []

    def fit(model, rows, val_rows, *, index, description, directory, resume_here):
        # The inputs are augmented, the target is the clean rows (level 1 only when stacked).
        stages.append(
            train_network(
                model,
                rows,
                rows,
                val=None if val_rows is None else (val_rows, val_rows),
                loss=keras.losses.MeanSquaredError(),
                options=options,
                kind="autoencoder",
                history=history,
                index=index,
                description=description,
                checkpoint_dir=directory,
                resume=resume_here,
                callbacks=callbacks,
                augment=index == 0,
            )
        )

    if options.mode == "end-to-end":
        encoder = build_encoder(blocks, input_shape)
        inputs = keras.Input(shape=input_shape, name="input")
        out = chain(_sparsity(options), encoder(chain(_noise_layers(options), inputs)))
        for k in reversed(range(len(blocks))):
            activation = output_activation if k == 0 else options.activation
            out = chain(decoder_block(arch, k + 1, shapes[k], activation, options.image_shape), out)
        autoencoder = keras.Model(inputs, out, name="autoencoder")
        fit(
            autoencoder,
            x,
            vx,
            index=0,
            description="autoencoder",
            directory=checkpoint_dir,
            resume_here=resume,
        )
    else:
        codes, val_codes = x, vx
        for k, block in enumerate(blocks):
            last = k == len(blocks) - 1
            inputs = keras.Input(shape=shapes[k], name=f"codes{k}")
            code = chain(block, chain(_noise_layers(options, str(k + 1)), inputs))
            if last:
                code = chain(_sparsity(options), code)
            activation = output_activation if k == 0 else None
            out = chain(
                decoder_block(arch, k + 1, shapes[k], activation, options.image_shape), code
            )
            level = keras.Model(inputs, out, name=f"level{k + 1}")
            here = level_folder(checkpoint_dir, options.mode, k + 1)
            fit(
                level,
                codes,
                val_codes,
                index=k,
                description=f"level {k + 1} of {len(blocks)}",
                directory=here,
                # Levels finished before the interruption reload from their checkpoints.
                resume_here=resume and (k == 0 or (here / "state.json").exists()),
            )
            if not last:
                below = build_encoder([block], shapes[k], name=f"encoder{k + 1}")
                codes = _predict(below, codes)
                val_codes = None if val_codes is None else _predict(below, val_codes)
        encoder = build_encoder(blocks, input_shape)
    report.info(
        f"encoder: {' -> '.join(str(u) for u in options.layers)} ({arch}, {options.mode}); top layer {encoder.layers[-1].name}"
    )
    return PretrainResult(
        base=encoder,
        kind="autoencoder",
        history=history,
        stages=stages,
        metrics=final_metrics(history, stages, options),
        options=options,
        rows=len(x),
        extra={"arch": arch, "mode": options.mode},
    )


def _rows(data) -> np.ndarray:
    """The input rows of a Dataset, an (x, y) pair or an array (labels ignored)."""
    from reuse.core.errors import DataError

    if hasattr(data, "arrays"):
        x = data.arrays()[0]
    elif isinstance(data, tuple):
        x = data[0]
    else:
        x = data
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise DataError(
            f"the data holds no rows to pretrain on (shape {x.shape})",
            "pass --data with at least one row of features",
        )
    return x


def _predict(model, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """`model` on `x` in batches, eagerly (a compiled predict per level would retrace)."""
    return np.concatenate(
        [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    )
