"""A real third-party SavedModel: basic-pitch 0.4.0's audio model (`saved_models/icassp_2022/nmp`,
input_2 (None, 43844, 1) → contour, note, onset). A head trains on its `note` output, as a user
runs it (the shell, `--output-key`, a pipe), and the tuned model reloads from another directory.
Skips when basic-pitch (installed with --no-deps: the model only) is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, last_record, shell

sys.path.insert(0, str(ROOT / "examples"))
import tones as tones_example  # noqa: E402

pytestmark = pytest.mark.slow


NMP = tones_example.basic_pitch_model()


def tones(path: Path, n: int, seed: int) -> Path:
    return tones_example.save_tones(path, n, seed)


@pytest.mark.skipif(NMP is None, reason="basic-pitch is not installed")
def test_a_head_trains_on_one_output_of_basic_pitch(tmp_path):
    train = tones(tmp_path / "train.npz", 24, seed=0)
    test = tones(tmp_path / "test.npz", 16, seed=1)
    result = shell(f"reuse inspect {NMP}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: float32 (None, 172, 88)" in result.stdout
    result = shell(f"reuse cache-features {NMP} --data {train} -o f.h5", cwd=tmp_path)
    assert result.returncode == 2 and "--output-key" in result.stderr
    assert "contour (None, 172, 264)" in result.stderr
    (tmp_path / "out").mkdir()
    result = shell(
        f"reuse cache-features {NMP} --output-key note --data {train} -o note.h5 --json"
        f" | reuse finetune --data {train} --epochs 40 --seed 0 -o out/head.keras --json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rec = last_record(result.stdout)
    assert rec["cut"] == "savedmodel" and rec["used_cache"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = shell(f"reuse evaluate ../out/head.keras --data {test} --json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert last_record(result.stdout)["metrics"]["accuracy"] >= 0.9


@pytest.mark.skipif(NMP is None, reason="basic-pitch is not installed")
def test_reuse_reads_basic_pitch_outputs_exactly(tmp_path):
    import tensorflow as tf

    from reuse.formats.model_io import load_model

    x = np.load(tones(tmp_path / "x.npz", 4, seed=2))["x"]
    want = tf.saved_model.load(str(NMP)).signatures["serving_default"](input_2=tf.constant(x))
    for key in ("contour", "note", "onset"):
        got = load_model(NMP, output_key=key)(x)
        assert float(np.max(np.abs(np.asarray(got) - want[key].numpy()))) < 1e-6
