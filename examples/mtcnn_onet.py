"""MTCNN's O-Net in Keras and in PyTorch, for importing facenet-pytorch's real `onet.pt`.

facenet-pytorch 2.6.0 ships the O-Net weights as a PyTorch state dict (`data/onet.pt`): four
conv + PReLU + max-pool stages on a 48×48×3 face crop, a permute of the feature map before it
is flattened, a 256-unit dense layer with PReLU, and three heads (box regression `dense6_2`,
landmarks `dense6_3`, face probability `dense6_1`). `build_keras_onet()` mirrors it layer for
layer with the same names, so `reuse import-weights onet.pt --into onet_arch.keras` fills it:

- PyTorch's `MaxPool2d(ceil_mode=True)` is `padding="same"` where the ceiling adds a window
  (46 → 23) and `"valid"` where it does not (21 → 10, 8 → 4);
- `x.permute(0, 3, 2, 1)` of an NCHW map is `Permute((2, 1, 3))` of an NHWC map: both
  flatten in W·H·C order, so `--flatten-order auto` sees the Permute and does not reorder;
- the outputs come in PyTorch's order (box, landmarks, probability).

`build_torch_onet()` is the same network in PyTorch (facenet-pytorch's `ONet` class, copied
so that its package's own dependencies, torchvision among them, are not needed).

Run it to write the Keras architecture and check data for `reuse import-weights --check`:

    python examples/mtcnn_onet.py OUT_DIR [path/to/onet.pt]
    # writes OUT_DIR/onet_arch.keras, OUT_DIR/x.npy (channels-last crops) and, when onet.pt
    # is given, OUT_DIR/y.npy (torch's three outputs joined per row: 4 + 10 + 2 columns)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def onet_weights_path() -> Path | None:
    """facenet-pytorch's installed `data/onet.pt`, found without importing the package, or None."""
    import importlib.util

    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "onet.pt"
    return path if path.exists() else None


def build_keras_onet():
    """The Keras O-Net: (n, 48, 48, 3) → [box (n, 4), landmarks (n, 10), probability (n, 2)]."""
    import keras
    from keras import layers

    def stage(x, i, filters, kernel, pool=None, pool_padding="valid"):
        x = layers.Conv2D(filters, kernel, name=f"conv{i}")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"prelu{i}")(x)
        if pool:
            x = layers.MaxPooling2D(pool[0], pool[1], padding=pool_padding, name=f"pool{i}")(x)
        return x

    inputs = keras.Input((48, 48, 3), name="face")
    x = stage(inputs, 1, 32, 3, (3, 2), "same")  # ceil_mode: 46 → 23
    x = stage(x, 2, 64, 3, (3, 2))  # 21 → 10
    x = stage(x, 3, 64, 3, (2, 2))  # 8 → 4
    x = stage(x, 4, 128, 2)  # 3×3×128
    x = layers.Permute((2, 1, 3), name="permute")(x)  # torch: x.permute(0, 3, 2, 1)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, name="dense5")(x)
    x = layers.PReLU(name="prelu5")(x)
    box = layers.Dense(4, name="dense6_2")(x)
    landmarks = layers.Dense(10, name="dense6_3")(x)
    prob = layers.Dense(2, activation="softmax", name="dense6_1")(x)
    return keras.Model(inputs, [box, landmarks, prob], name="onet")


def build_torch_onet():
    """facenet-pytorch's ONet (without loading weights): NCHW in, (box, landmarks, prob) out."""
    from torch import nn

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
            self.prelu1 = nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
            self.prelu2 = nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
            self.prelu3 = nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
            self.prelu4 = nn.PReLU(128)
            self.dense5 = nn.Linear(1152, 256)
            self.prelu5 = nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.softmax6_1 = nn.Softmax(dim=1)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = x.permute(0, 3, 2, 1).contiguous()
            x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    return ONet().eval()


def check_data(n: int = 8, seed: int = 0) -> np.ndarray:
    """n channels-last face crops, (n, 48, 48, 3) float32, scaled as MTCNN does ((px − 127.5)/128)."""
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 256, (n, 48, 48, 3)) - 127.5) / 128.0).astype("float32")


def torch_outputs(weights: Path, x: np.ndarray) -> np.ndarray:
    """The real O-Net's outputs on channels-last `x`, joined per row: (n, 4 + 10 + 2)."""
    import torch

    net = build_torch_onet()
    net.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    with torch.no_grad():
        outs = net(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))))
    return np.concatenate([o.numpy() for o in outs], axis=1)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-4])
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    build_keras_onet().save(out / "onet_arch.keras")
    x = check_data()
    np.save(out / "x.npy", x)
    written = ["onet_arch.keras", "x.npy"]
    weights = Path(argv[1]) if len(argv) > 1 else onet_weights_path()
    if weights is not None:
        np.save(out / "y.npy", torch_outputs(weights, x))
        written.append(f"y.npy (from {weights})")
    print(f"wrote in {out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
