"""reuse.core.reproducible: equal models saved at different times become equal bytes."""

from __future__ import annotations

import json
import zipfile

import numpy as np


def test_normalize_keras_archive_makes_equal_models_equal_bytes(tmp_path, mlp_path):
    from reuse.core.reproducible import FIXED_DATE_SAVED, normalize_keras_archive, sha256_file
    from reuse.formats.model_io import load_model

    model = load_model(mlp_path)
    copy = tmp_path / "copy.keras"
    model.save(copy)
    # Keras stamps the archive with the time; make the two stamps differ for sure.
    with zipfile.ZipFile(copy) as src, zipfile.ZipFile(tmp_path / "later.keras", "w") as dst:
        for info in src.infolist():
            info.date_time = (2030, 1, 1, 0, 0, 0)
            data = src.read(info.filename)
            if info.filename == "metadata.json":
                data = json.dumps(
                    {**json.loads(data), "date_saved": "2030-01-01@00:00:00"}
                ).encode()
            dst.writestr(info, data)
    a = normalize_keras_archive(copy)
    b = normalize_keras_archive(tmp_path / "later.keras")
    assert sha256_file(a) == sha256_file(b)
    with zipfile.ZipFile(a) as archive:
        assert json.loads(archive.read("metadata.json"))["date_saved"] == FIXED_DATE_SAVED
    reloaded = load_model(a)
    for w0, w1 in zip(model.get_weights(), reloaded.get_weights(), strict=True):
        assert np.array_equal(w0, w1)
