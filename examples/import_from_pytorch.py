"""Reuse a network trained in PyTorch: import its state dict into Keras, check, freeze, fine-tune.

    python examples/import_from_pytorch.py [WORK_DIR]   # default WORK_DIR: demo/pytorch (gitignored)

1. Train a small PyTorch MLP on scikit-learn's digits 0-4 and save its state dict (`mlp.pt`).
2. `reuse.import_weights` it into the matching Keras architecture, written as a layer spec
   (Linear weights (out, in) are transposed to Keras kernels (in, out)), and check that both
   networks give the same outputs on the same images.
3. Freeze the imported hidden layers and fine-tune a new head on digits 5-9.

The shell equivalent of step 2:

    reuse import-weights mlp.pt --arch 'input:64,dense:64:elu:name=fc1,dense:64:elu:name=fc2,dense:5:softmax:name=fc3' \
        --check x.npy --reference probs.npy -o imported.keras

Exits 0 with a message when PyTorch is not installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = (
    int(os.environ["EPOCHS"]) if os.environ.get("EPOCHS") else None
)  # None: the defaults; tests set EPOCHS
ARCH = "input:64,dense:64:elu:name=fc1,dense:64:elu:name=fc2,dense:5:softmax:name=fc3"


def train_torch_mlp(x: np.ndarray, y: np.ndarray, steps: int = 300, seed: int = 0):
    """A 64-64-64-5 ELU MLP trained with Adam on (x, y); layer names match ARCH."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 5)

        def forward(self, t):
            return self.fc3(nn.functional.elu(self.fc2(nn.functional.elu(self.fc1(t)))))

    net = MLP()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(xt), (32,), generator=gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xt[batch]), yt[batch])
        loss.backward()
        opt.step()
    return net.eval()


def main(work: Path) -> float | None:
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipping this example (pip install torch to run it).")
        return None

    import reuse
    from reuse.data.demo import write_digits_npz

    work.mkdir(parents=True, exist_ok=True)
    source = write_digits_npz(work / "digits_0to4", classes=range(0, 5))
    target = write_digits_npz(work / "digits_5to9", classes=range(5, 10))

    # 1. The PyTorch side: train on digits 0-4, save only the weights (a state dict).
    with np.load(source["train"]) as f:
        x, y = f["x"], f["y"]
    net = train_torch_mlp(x, y)
    torch.save(net.state_dict(), work / "mlp.pt")
    with np.load(source["test"]) as f:
        x_test, y_test = f["x"], f["y"]
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(x_test)), dim=1).numpy()
    print(
        f"PyTorch MLP: test accuracy {(probs.argmax(1) == y_test).mean():.4f} on digits 0-4; saved {work / 'mlp.pt'}"
    )

    # 2. Import into Keras; the check runs the imported model on x_test and compares with PyTorch.
    report = reuse.import_weights(
        work / "mlp.pt", ARCH, strict=True, check_inputs=x_test, check_outputs=probs
    )
    counts = report.counts()
    print(f"imported: {counts}; check: max |keras - torch| = {report.check['max_abs_diff']:.2e}")
    keras_probs = report.model.predict(x_test, verbose=0)
    assert np.allclose(keras_probs, probs, atol=1e-5), "the imported model disagrees with PyTorch"
    reuse.save_model(report.model, work / "imported.keras")

    # 3. Transfer: freeze fc1 and fc2, put a new softmax head on fc2, train it on digits 5-9.
    model = reuse.load_model(work / "imported.keras")
    reuse.freeze(model, upto="fc2")
    train, valid, test = (reuse.load_data(target[name]) for name in ("train", "valid", "test"))
    result = reuse.finetune(
        model, train, val=valid, cut="fc2", unfreeze="gradual", epochs=EPOCHS, seed=0
    )
    for stage in result.stages:
        row = stage.row()
        print(
            f"stage {row['stage']}: trainable {row['trainable']:<10} {row['epochs']:>3} epochs  "
            f"best {row['monitor']} {row['best']:.4f}  kept {row['kept']}"
        )
    ev = reuse.evaluate(result.model, test)
    print(f"test accuracy {ev.accuracy:.4f} on {ev.rows} held-out images of digits 5-9")
    return ev.accuracy


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "demo" / "pytorch")
