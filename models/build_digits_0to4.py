"""Rebuild models/digits_0to4.keras and its card from scikit-learn's bundled 8x8 digits.

    python models/build_digits_0to4.py            # writes models/digits_0to4.keras + .md
    python models/build_digits_0to4.py -o /tmp/d.keras   # elsewhere (the card goes beside it)

Classes 0-4 of `sklearn.datasets.load_digits()` (no download), split by
`reuse.data.demo.digits_split(range(5), seed=0)`: the same split the tests and the demo use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common

NAME = "digits_0to4"
HIDDEN, UNITS = 4, 64
LR, BATCH, EPOCHS, PATIENCE = 1e-3, 32, 200, 10


def build(out: Path, epochs: int = EPOCHS) -> dict:
    from reuse.data.demo import digits_split

    _common.deterministic()
    parts = digits_split(range(5), seed=0)
    xy = {name: (part["x"], part["y"]) for name, part in parts.items()}
    model = _common.mlp(NAME, n_in=64, hidden=HIDDEN, units=UNITS, n_out=5)
    run = _common.train(
        model, xy["train"], xy["valid"], lr=LR, batch_size=BATCH, epochs=epochs, patience=PATIENCE
    )
    shipped = _common.save_shipped(model, out)
    acc, correct = _common.accuracy(shipped, *xy["test"])
    n_test = len(xy["test"][1])
    facts = {
        **_common.shipped_facts(out, shipped),
        "test_accuracy": f"{acc:.4f}",
        "test_correct": f"{correct} / {n_test}",
        "val_accuracy": f"{run['val_accuracy']:.4f}",
        "epochs": f"{run['best_epoch']} (best of {run['epochs_run']} run)",
    }
    sizes = ", ".join(f"{name} {len(part['y'])}" for name, part in parts.items())
    _common.write_card(
        out.with_suffix(".md"),
        title=f"{NAME}.keras",
        summary=(
            "A small MLP that classifies scikit-learn's 8x8 handwritten digits 0-4. It is the model "
            "`make demo` reuses for digits 5-9: its lower layers (`hidden1`, `hidden2`) are frozen and "
            "a new head is trained on top."
        ),
        facts=facts,
        sections={
            "Data": f"""\
`sklearn.datasets.load_digits()` (1,797 grey-scale 8x8 images of the digits 0-9, UCI ML hand-written
digits; shipped inside scikit-learn, nothing downloaded), classes 0-4 only. Inputs: the 64 pixels,
counts 0-16 divided by 16, as float32 in [0, 1]. Labels: the digit (0-4).

Split: `reuse.data.demo.digits_split(range(5), seed=0)`: per class 60% train / 20% valid / 20% test
({sizes}). `python -m reuse.data.demo DIR --classes 0-4` writes the same split as `.npz` files.""",
            "Architecture": _common.layer_table(shipped),
            "Training": f"""\
Adam (learning rate {LR}), sparse categorical cross-entropy, batch size {BATCH}, shuffled each
epoch, up to {epochs} epochs with early stopping on the validation loss (patience {PATIENCE}; the
weights of the best epoch are kept). Best epoch {run["best_epoch"]} of {run["epochs_run"]}, validation
loss {run["val_loss"]:.4f}; {run["seconds"]:.1f} s on {_common.environment()}.""",
            "Test accuracy": f"""\
{acc:.4f} ({correct} of {n_test} test images of digits 0-4), measured on the saved file.""",
            "Rebuild": f"""\
```
python models/build_digits_0to4.py    # under a minute; rewrites models/{NAME}.keras and this card
```

{_common.DETERMINISM_NOTE.format(seed=_common.SEED)}""",
        },
    )
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / f"{NAME}.keras",
        help="where to write the model (the card is written beside it, .md)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=EPOCHS,
        help=f"most epochs to train (default {EPOCHS}; fewer only for quick checks)",
    )
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: --epochs {args.epochs}")
    if not args.out.parent.is_dir():
        parser.error(f"folder {args.out.parent} does not exist. Received: --out {args.out}")
    facts = build(args.out, args.epochs)
    for key, value in facts.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
