"""Default output names follow one rule for every command."""

from pathlib import Path

from reuse.core.naming import default_output, sidecar, stem


def test_every_role_keeps_the_whole_stem():
    assert default_output("d/my.model.keras", "tuned") == Path("d/my.model.tuned.keras")
    assert default_output("d/my.model.keras", "frozen") == Path("d/my.model.frozen.keras")
    assert default_output("d/my.model.keras", "sparse") == Path("d/my.model.sparse.keras")
    assert default_output("d/my.model.keras", "features", ".h5") == Path("d/my.model.features.h5")


def test_format_suffixes_are_stripped_once():
    assert stem("a.weights.h5") == "a"
    assert stem("a.H5") == "a"
    assert stem("a.hdf5") == "a"
    assert stem("saved_model_dir") == "saved_model_dir"
    assert stem(".keras") == ".keras"


def test_sidecars_sit_next_to_the_output():
    assert sidecar("out/t.keras", "report", ".json") == Path("out/t.report.json")
    assert sidecar("out/t.keras", "history") == Path("out/t.history")
