"""The demo pipeline from Python: load, freeze, cache features, fine-tune gradually, evaluate.

    python examples/python_api.py [WORK_DIR]     # default WORK_DIR: demo/python_api (gitignored)

The same steps as `make demo` (examples/demo.sh), with the library functions under the commands:
`reuse.load_model`, `reuse.freeze`, `reuse.cache_features`, `reuse.finetune`, `reuse.evaluate`.
`import reuse` is cheap: TensorFlow is imported on the first call that needs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import reuse
from reuse.data.demo import write_digits_npz

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = (
    int(os.environ["EPOCHS"]) if os.environ.get("EPOCHS") else None
)  # None: the defaults; tests set EPOCHS


def main(work: Path) -> float:
    work.mkdir(parents=True, exist_ok=True)
    write_digits_npz(work, classes=range(5, 10))  # train/valid/test .npz of digits 5-9, labels 0..4
    train = reuse.load_data(work / "train.npz")
    valid = reuse.load_data(work / "valid.npz")
    test = reuse.load_data(work / "test.npz")

    model = reuse.load_model(ROOT / "models" / "digits_0to4.keras")
    change = reuse.freeze(model, upto="hidden2")  # in place; the file on disk is untouched
    print(f"froze {', '.join(change.frozen_now)}; trainable: {', '.join(change.trainable)}")

    taps = ["hidden1", "hidden2", "hidden3", "hidden4"]
    cache = reuse.cache_features(model, train, work / "feats.h5", taps=taps)
    print(f"cached {cache.rows} rows of {', '.join(cache.taps)} in {cache.seconds:.1f} s")

    result = reuse.finetune(
        model,
        train,
        val=valid,
        features=work / "feats.h5",
        unfreeze="gradual",
        epochs=EPOCHS,
        seed=0,
    )
    for stage in result.stages:
        row = stage.row()
        print(
            f"stage {row['stage']}: trainable {row['trainable']:<36} tap {row['tap']:<8} "
            f"{row['epochs']:>3} epochs  best {row['monitor']} {row['best']:.4f}  kept {row['kept']}"
        )
    reuse.save_model(result.model, work / "tuned.keras")

    ev = reuse.evaluate(result.model, test)
    print(f"test accuracy {ev.accuracy:.4f} on {ev.rows} held-out images of digits 5-9")
    return ev.accuracy


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "demo" / "python_api")
