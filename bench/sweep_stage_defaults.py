"""The sweep behind the gradual-unfreezing defaults (docs/finetune.md, issue 14).

Each configuration is `reuse.finetune(base, train, val=val, unfreeze="gradual", **options)` on
the MNIST 5-9 task of bench_mnist_augment.py; it prints test accuracy per seed and mean ± std.

    python bench/sweep_stage_defaults.py aug 1,2,3 old P10 G20b20ls
    python bench/sweep_stage_defaults.py plain 1,2,3 old P3 P10

The first argument is `aug` (--augment shift:0.08,rotate:0.04,zoom:0.08 --image-shape 28,28,1)
or `plain`. Options not named in a configuration take the library's defaults *at the time of
the run*, so `old` spells the pre-issue-14 defaults out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

OLD = dict(epochs=10, early_stopping=3, stage_lr_div=2.0, batch_size=32, label_smoothing=0.0)
CONFIGS = {
    "old": OLD,
    "P3": dict(OLD, epochs=100, early_stopping=3),
    "P10": dict(OLD, epochs=100, early_stopping=10),
    "P20": dict(OLD, epochs=100, early_stopping=20),
    "P10find": dict(OLD, epochs=100, early_stopping=10, stage_lr="find"),
    "P20div1": dict(OLD, epochs=200, early_stopping=20, stage_lr_div=1.0),
    "P30div1": dict(OLD, epochs=300, early_stopping=30, stage_lr_div=1.0),
    "P20div1b20": dict(OLD, epochs=200, early_stopping=20, stage_lr_div=1.0, batch_size=20),
    "G30b20": dict(OLD, epochs=300, early_stopping=30, stage_lr_div=1.0, batch_size=20),
    "G20b20s1": dict(
        OLD, epochs=200, early_stopping=20, stage_lr_div=1.0, batch_size=20, unfreeze_step=1
    ),
    "FT": dict(OLD, epochs=200, early_stopping=20, stage_lr_div=1.0, unfreeze_step=5),
    "FTp30": dict(OLD, epochs=300, early_stopping=30, stage_lr_div=1.0, unfreeze_step=5),
    "G20b20ls": dict(
        OLD, epochs=200, early_stopping=20, stage_lr_div=1.0, batch_size=20, label_smoothing=0.1
    ),
    "oldls": dict(OLD, label_smoothing=0.1),
    "oldb20": dict(OLD, batch_size=20),
    "olds1": dict(OLD, unfreeze_step=1),
    "old20": dict(OLD, epochs=20),
}


def main(argv: list[str]) -> None:
    import bench_mnist_augment as B

    from reuse.core import report

    report.set_quiet(True)
    augment = argv[0] == "aug"
    seeds = [int(s) for s in argv[1].split(",")]
    extra = dict(augment=B.AUGMENT, image_shape=(28, 28, 1)) if augment else {}
    for name in argv[2:]:
        accs = []
        for seed in seeds:
            train, val, test = B.task_data(seed)
            acc, seconds, epochs = B.reuse_run(train, val, test, seed, **extra, **CONFIGS[name])
            accs.append(acc)
            print(
                f"{name} augment={augment} seed {seed}: {acc:.4f} ({seconds:.1f} s, {epochs} epochs)"
            )
        a = np.array(accs)
        print(f"{name} augment={augment}: {a.mean():.4f} ± {a.std(ddof=1):.4f} over {len(a)} seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
