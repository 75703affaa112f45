"""`FinetuneResult.save` writes the model, its history and its report: the Python API gets the
same files as `reuse finetune`."""

import json

import numpy as np

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
