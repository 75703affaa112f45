"""The hand-written Keras reference that `reuse finetune` has to beat (issue 14).

What a practitioner writes by hand for the MNIST 5-9 transfer task, about 15 lines of Keras:
load the base, replace its output layer with Dense(5, softmax), keep every reused layer
trainable, train with Adam and batch 20, early stopping on the validation loss with the best
weights restored. With `augment=True` the same script puts Keras' own RandomTranslation(0.08),
RandomRotation(0.04) and RandomZoom(0.08) in front of the model on 28x28x1 images (training
only), with Adam 1e-3 and patience 30 — the settings the issue measured.

Nothing in here uses `reuse`.
"""

from __future__ import annotations

import time

import numpy as np

NO_AUGMENT = {"lr": 0.01, "patience": 20}
AUGMENT = {"lr": 1e-3, "patience": 30}
BATCH, MAX_EPOCHS = 20, 1000


def train(model_path, xt, yt, xv, yv, *, seed: int, augment: bool = False):
    """Train the reference; returns (model, seconds, epochs). x arrays are (N, 784) floats."""
    import keras

    settings = AUGMENT if augment else NO_AUGMENT
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    base = keras.models.load_model(model_path)
    outputs = keras.layers.Dense(5, activation="softmax", name="new_output")(base.layers[-2].output)
    model = keras.Model(base.inputs, outputs)
    fit_model = model
    if augment:
        pipeline = keras.Sequential(
            [
                keras.layers.Reshape((28, 28, 1)),
                keras.layers.RandomTranslation(0.08, 0.08, seed=seed),
                keras.layers.RandomRotation(0.04, seed=seed),
                keras.layers.RandomZoom(0.08, seed=seed),
                keras.layers.Reshape((784,)),
            ]
        )
        inputs = keras.Input((784,))
        fit_model = keras.Model(inputs, model(pipeline(inputs)))
    fit_model.compile(
        optimizer=keras.optimizers.Adam(settings["lr"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(patience=settings["patience"], restore_best_weights=True)
    history = fit_model.fit(
        xt,
        yt,
        batch_size=BATCH,
        epochs=MAX_EPOCHS,
        validation_data=(xv, yv),
        callbacks=[stop],
        verbose=0,
    )
    return model, time.perf_counter() - started, len(history.history["loss"])


def accuracy(model, x, y) -> float:
    """Top-1 accuracy of `model` on (x, y)."""
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), axis=1) == y))
