"""Make the small files the documentation's examples use, so that every example there runs.

    python examples/doc_files.py [DIR]      # default DIR: demo/docs (gitignored); then cd DIR

The pages under docs/ name these files; the numbers they show came from files built the same
way (layer names and parameter counts are identical, trained weights may differ):

    base.keras, model.keras  an MLP 8 -> 5 x Dense(6, ELU) -> Dense(3, softmax): hidden1..hidden5,
                             output (243 parameters)
    train.npz, valid.npz,    three classes of 8-feature rows (`x`, `y`), 1,000 / 200 / 200 rows
    test.npz, d.npz          (d.npz is train.npz again)
    x.npy, y.npy, table.csv  the training rows as .npy arrays and as CSV (label column `species`)
    photos/                  30 small PNG images in three class sub-folders (cat, dog, fox)
    convnet.keras            Conv2D/BatchNorm/MaxPool/Conv2D/GAP/Dense on 14 x 14 x 1 images
    resnet.keras             a block with a skip connection: stem -> branch_a -> add (+ stem)
    broken.keras             base.keras with ReLU and a dead first layer (bias -100): `reuse check`
    transfer.keras           MobileNetV2 (alpha 0.35, 32 x 32, random weights: no download)
                             inside a Sequential, frozen, then `gap` and `output`
    mlp.pt, y_torch.npy      a PyTorch MLP's state dict and its outputs on x.npy (only when
                             PyTorch is installed)

Every file is seeded: the same command writes the same data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

import reuse  # noqa: F401 - first, so that TensorFlow starts quietly


def make_data(out: Path, rng: np.random.Generator) -> None:
    centers = rng.normal(0, 2, size=(3, 8))
    for name, n in (("train", 1000), ("valid", 200), ("test", 200)):
        y = rng.integers(0, 3, size=n)
        x = (centers[y] + rng.normal(0, 1.5, size=(n, 8))).astype("float32")
        np.savez(out / f"{name}.npz", x=x, y=y.astype("int64"))
    shutil.copy(out / "train.npz", out / "d.npz")
    train = np.load(out / "train.npz")
    np.save(out / "x.npy", train["x"])
    np.save(out / "y.npy", train["y"])
    names = np.array(["setosa", "versicolor", "virginica"])[train["y"]]
    header = ",".join([f"f{i}" for i in range(8)] + ["species"])
    lines = [
        ",".join([*(f"{v:.4f}" for v in row), s]) for row, s in zip(train["x"], names, strict=True)
    ]
    (out / "table.csv").write_text("\n".join([header, *lines]) + "\n")


def make_photos(out: Path, rng: np.random.Generator) -> None:
    from PIL import Image

    for k, label in enumerate(("cat", "dog", "fox")):
        folder = out / "photos" / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(10):
            pixels = rng.integers(0, 256, size=(40, 40, 3)) // (k + 1)
            Image.fromarray(pixels.astype("uint8")).save(folder / f"{label}_{i}.png")


def make_models(out: Path) -> None:
    import keras
    from keras import layers

    from reuse.formats.model_io import save_model

    keras.utils.set_random_seed(0)
    # First, so that the base's own input layer gets Keras' first name (`input_layer`).
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    base.trainable = False
    transfer = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            base,
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, activation="softmax", name="output"),
        ],
        name="transfer",
    )
    save_model(transfer, out / "transfer.keras")

    def mlp(activation: str, name: str) -> keras.Model:
        inputs = keras.Input((8,))
        h = inputs
        for i in range(1, 6):
            h = layers.Dense(6, activation=activation, name=f"hidden{i}")(h)
        return keras.Model(inputs, layers.Dense(3, "softmax", name="output")(h), name=name)

    save_model(mlp("elu", "base"), out / "base.keras")
    shutil.copy(out / "base.keras", out / "model.keras")

    broken = mlp("relu", "broken")
    kernel, bias = broken.get_layer("hidden1").get_weights()
    broken.get_layer("hidden1").set_weights([kernel, bias - 100.0])
    save_model(broken, out / "broken.keras")

    convnet = keras.Sequential(
        [
            keras.Input((14, 14, 1)),
            layers.Conv2D(4, 3, name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(8, 3, name="conv2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, activation="softmax", name="output"),
        ],
        name="convnet",
    )
    save_model(convnet, out / "convnet.keras")

    inputs = keras.Input((8,))
    stem = layers.Dense(6, activation="relu", name="stem")(inputs)
    branch = layers.Dense(6, activation="relu", name="branch_a")(stem)
    branch = layers.Dense(6, name="branch_b")(branch)
    added = layers.Add(name="add")([stem, branch])
    outputs = layers.Dense(3, activation="softmax", name="output")(added)
    save_model(keras.Model(inputs, outputs, name="resnet"), out / "resnet.keras")


def make_torch(out: Path) -> None:
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: mlp.pt and y_torch.npy are not made")
        return
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("fc1", torch.nn.Linear(8, 6))
    net.add_module("bn", torch.nn.BatchNorm1d(6, eps=1e-5))
    net.add_module("relu", torch.nn.ReLU())
    net.add_module("fc2", torch.nn.Linear(6, 3))
    net.eval()
    torch.save(net.state_dict(), out / "mlp.pt")
    x = np.load(out / "x.npy")
    with torch.no_grad():
        np.save(out / "y_torch.npy", net(torch.from_numpy(x)).numpy())


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "demo/docs")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    make_data(out, rng)
    make_photos(out, rng)
    make_models(out)
    make_torch(out)
    print(f"wrote the documentation's example files to {out}/")


if __name__ == "__main__":
    main(sys.argv[1:])
