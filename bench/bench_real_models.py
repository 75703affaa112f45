"""Real third-party models (issue 15): MTCNN's O-Net from facenet-pytorch's `onet.pt`, and
basic-pitch's SavedModel. Rows: the O-Net import's max output difference from torch; reuse's
SavedModel block against the raw signature, per output; a head trained on basic-pitch's
`note` output (tones.py clips, 220 vs 880 Hz), test accuracy over seeds 0, 1, 2.

Skipped rows when torch / facenet-pytorch / basic-pitch are absent (installed with --no-deps
by `make test`'s environment).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import mtcnn_onet  # noqa: E402
import tones  # noqa: E402

SEEDS = (0, 1, 2)


def _reuse(args: str, cwd: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = subprocess.run(
        f"{sys.executable} -m reuse {args} --json",
        shell=True,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _onet() -> list[dict]:
    weights = mtcnn_onet.onet_weights_path()
    try:
        import torch  # noqa: F401
    except ImportError:
        weights = None
    if weights is None:
        return [{"name": "onet import max abs diff", "skipped": "torch or facenet-pytorch absent"}]
    from reuse.weights.importer import import_weights

    x = mtcnn_onet.check_data()
    rep = import_weights(
        weights,
        mtcnn_onet.build_keras_onet(),
        check_inputs=x,
        check_outputs=mtcnn_onet.torch_outputs(weights, x),
        tolerance=1e-5,
    )
    return [{"name": "onet import max abs diff", "value": rep.check["max_abs_diff"], "unit": "abs"}]


def _basic_pitch() -> list[dict]:
    nmp = tones.basic_pitch_model()
    if nmp is None:
        return [{"name": "basic-pitch", "skipped": "basic-pitch absent"}]
    import tensorflow as tf

    from reuse.formats.model_io import load_model

    rows = []
    x, _ = tones.tones(8, seed=7)
    want = tf.saved_model.load(str(nmp)).signatures["serving_default"](input_2=tf.constant(x))
    for key in ("contour", "note", "onset"):
        got = np.asarray(load_model(nmp, output_key=key)(x))
        diff = float(np.max(np.abs(got - want[key].numpy())))
        rows.append({"name": f"basic-pitch {key} max abs diff", "value": diff, "unit": "abs"})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tones.save_tones(tmp / "train.npz", 64, seed=0)
        tones.save_tones(tmp / "test.npz", 64, seed=100)
        _reuse(f"cache-features {nmp} --output-key note --data train.npz -o note.h5", tmp)
        accs = []
        for seed in SEEDS:
            _reuse(
                f"finetune {nmp} --output-key note --features note.h5 --data train.npz "
                f"--epochs 10 --seed {seed} -o head{seed}.keras",
                tmp,
            )
            rec = _reuse(f"evaluate head{seed}.keras --data test.npz", tmp)
            accs.append(rec["metrics"]["accuracy"])
    rows.append(
        {
            "name": "basic-pitch note head test accuracy",
            "value": statistics.mean(accs),
            "unit": f"±{statistics.pstdev(accs):.3f}",
        }
    )
    return rows


def run() -> list[dict]:
    return _onet() + _basic_pitch()


if __name__ == "__main__":
    for row in run():
        print(row)
