"""`FinetuneResult.save` writes the model, its history and its report: the Python API gets the
same files as `reuse finetune`."""

import json

import numpy as np
import pytest

from tests.helpers import classification_data, mlp


def test_save_writes_model_history_and_report(tmp_path):
    import keras

    import reuse

    x, y = classification_data(n=40)
    result = reuse.finetune(mlp(), (x, y), epochs=2, seed=0)
    saved = result.save(tmp_path / "my.model.tuned.keras")
    assert saved.model == tmp_path / "my.model.tuned.keras"
    assert saved.history_csv == tmp_path / "my.model.tuned.history.csv"
    report = json.loads((tmp_path / "my.model.tuned.report.json").read_text())
    assert report["cut"] == result.transfer.cut
    assert report["stages"] == json.loads(json.dumps([s.row() for s in result.stages]))
    assert report["head"] == result.transfer.head
    history = json.loads(saved.history_json.read_text())
    assert len(history) == len(result.history) == 2
    reloaded = keras.models.load_model(saved.model)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), result.model.predict(x, verbose=0))
    leftovers = [p.name for p in tmp_path.iterdir() if ".part" in p.name]
    assert leftovers == []


@pytest.mark.slow  # over 10 s on 2 shared cores
def test_a_model_trained_with_label_smoothing_loads_in_plain_keras(tmp_path):
    import subprocess
    import sys

    import reuse

    x, y = classification_data(n=30)
    result = reuse.finetune(mlp(), (x, y), epochs=1, seed=0, unfreeze="all", label_smoothing=0.1)
    saved = result.save(tmp_path / "t.keras")
    script = (
        "import sys, numpy as np, keras\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "print(m.predict(np.load(sys.argv[2]), verbose=0).sum())\n"
    )
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(saved.model), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert abs(float(proc.stdout.strip().splitlines()[-1]) - len(x)) < 1e-3
