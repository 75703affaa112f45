"""reuse.formats.weight_files: reading tensors from weight-only files."""

from __future__ import annotations

import pytest


def test_torch_missing_says_how_to_install(weight_files, monkeypatch, tmp_path):
    from reuse.core.errors import ModelLoadError
    from reuse.formats import weight_files as wf

    path = tmp_path / "w.pt"
    path.write_bytes(b"PK")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(ModelLoadError, match="needs torch") as err:
        wf.read_tensors(path)
    assert "pip install" in err.value.hint
