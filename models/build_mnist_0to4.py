"""Rebuild models/mnist_0to4.keras and its card from the MNIST IDX files (digits 0-4).

    python models/build_mnist_0to4.py MNIST_DIR                 # ~1-2 min on 2 CPU cores
    python models/build_mnist_0to4.py MNIST_DIR -o /tmp/m.keras  # elsewhere (card beside it)

MNIST_DIR holds the four original files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gzip-compressed or not). The first 5,000
training images are held out for validation, as in the classic exercise (Geron, ch. 11).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common

NAME = "mnist_0to4"
HIDDEN, UNITS = 5, 100
LR, BATCH, EPOCHS, PATIENCE = 1e-3, 32, 100, 5
N_VALID = 5000
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def find_file(folder: Path, stem: str) -> Path:
    from reuse.core.errors import DataError

    if not folder.is_dir():
        raise DataError(
            f"MNIST folder {folder} does not exist",
            "pass the folder that holds the four MNIST IDX files",
        )
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise DataError(
        f"{folder} has no {stem}[.gz]", "pass the folder that holds the four MNIST IDX files"
    )


def load_mnist_0to4(folder: Path) -> dict[str, tuple]:
    """{"train"|"valid"|"test": (x float32 (n, 784) in [0, 1], y int64)} for digits 0-4.

    Validation = the first 5,000 training images, then both parts filtered to digits 0-4.
    """
    import numpy as np

    from reuse.data.idx import read_idx

    raw = {key: read_idx(find_file(folder, stem)) for key, stem in FILES.items()}

    def prepare(images, labels):
        keep = labels < 5
        x = images[keep].reshape(int(keep.sum()), -1).astype(np.float32) / 255.0
        return x, labels[keep].astype(np.int64)

    return {
        "train": prepare(raw["train_x"][N_VALID:], raw["train_y"][N_VALID:]),
        "valid": prepare(raw["train_x"][:N_VALID], raw["train_y"][:N_VALID]),
        "test": prepare(raw["test_x"], raw["test_y"]),
    }


def build(mnist_dir: Path, out: Path) -> dict:
    data = load_mnist_0to4(mnist_dir)
    _common.deterministic()
    model = _common.mlp(NAME, n_in=784, hidden=HIDDEN, units=UNITS, n_out=5)
    run = _common.train(
        model,
        data["train"],
        data["valid"],
        lr=LR,
        batch_size=BATCH,
        epochs=EPOCHS,
        patience=PATIENCE,
    )
    shipped = _common.save_shipped(model, out)
    acc, correct = _common.accuracy(shipped, *data["test"])
    n_test = len(data["test"][1])
    facts = {
        **_common.shipped_facts(out, shipped),
        "test_accuracy": f"{acc:.4f}",
        "test_correct": f"{correct} / {n_test}",
        "val_accuracy": f"{run['val_accuracy']:.4f}",
        "epochs": f"{run['best_epoch']} (best of {run['epochs_run']} run)",
    }
    n_train, n_valid = len(data["train"][1]), len(data["valid"][1])
    _common.write_card(
        out.with_suffix(".md"),
        title=f"{NAME}.keras",
        summary=(
            "The base model of the classic transfer-learning exercise (Geron, *Hands-On Machine "
            "Learning*, ch. 11): five hidden layers of 100 ELU units with He initialization, trained "
            "with Adam and early stopping on MNIST digits 0-4. `examples/mnist_transfer.sh` reuses its "
            "hidden layers for digits 5-9 with 100 training images per digit."
        ),
        facts=facts,
        sections={
            "Data": f"""\
The original MNIST IDX files (28x28 grey-scale images; not in this repository: pass your copy).
Inputs: the 784 pixels, flattened, divided by 255, as float32 in [0, 1]. Labels: the digit (0-4).

- validation: the first {N_VALID:,} images of `train-images-idx3-ubyte`, then digits 0-4 only ({n_valid:,} images);
- training: the other 55,000, digits 0-4 only ({n_train:,} images);
- test: `t10k-images-idx3-ubyte`, digits 0-4 only ({n_test:,} images).""",
            "Architecture": _common.layer_table(shipped),
            "Training": f"""\
Adam (learning rate {LR}), sparse categorical cross-entropy, batch size {BATCH}, shuffled each
epoch, up to {EPOCHS} epochs with early stopping on the validation loss (patience {PATIENCE}; the
weights of the best epoch are kept). Best epoch {run["best_epoch"]} of {run["epochs_run"]}, validation
loss {run["val_loss"]:.4f}; {run["seconds"]:.0f} s on {_common.environment()}.""",
            "Test accuracy": f"""\
{acc:.4f} ({correct:,} of {n_test:,} t10k test images of digits 0-4), measured on the saved file.""",
            "Rebuild": f"""\
```
python models/build_mnist_0to4.py MNIST_DIR    # 1-2 min on 2 CPU cores; rewrites models/{NAME}.keras and this card
```

{_common.DETERMINISM_NOTE.format(seed=_common.SEED)}""",
        },
    )
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist_dir", type=Path, help="folder with the four MNIST IDX files")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / f"{NAME}.keras",
        help="where to write the model (the card is written beside it, .md)",
    )
    args = parser.parse_args()
    if not args.out.parent.is_dir():
        parser.error(f"folder {args.out.parent} does not exist. Received: --out {args.out}")
    from reuse.core.errors import ReuseError

    try:
        facts = build(args.mnist_dir, args.out)
    except ReuseError as err:
        raise SystemExit(f"Error: {err}") from None
    for key, value in facts.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
