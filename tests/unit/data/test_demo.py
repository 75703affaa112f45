"""reuse.data.demo: the demo data (scikit-learn digits) is deterministic, fits the data contract,
refuses bad options."""

from __future__ import annotations

import numpy as np
import pytest


def test_demo_data_is_deterministic_and_holds_the_chosen_classes(tmp_path):
    from sklearn.datasets import load_digits

    from reuse.data.demo import write_digits_npz

    first = write_digits_npz(tmp_path / "a", classes=range(5, 10))
    second = write_digits_npz(tmp_path / "b", classes=range(5, 10))
    assert sorted(first) == ["test", "train", "valid"]
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes()
    target = load_digits().target
    seen = []
    for path in first.values():
        with np.load(path) as npz:
            x, y, classes, index = npz["x"], npz["y"], npz["classes"], npz["index"]
        assert x.dtype == np.float32 and x.shape == (len(y), 64)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int64 and set(y.tolist()) == {0, 1, 2, 3, 4}
        assert classes.tolist() == [5, 6, 7, 8, 9]
        assert (classes[y] == target[index]).all()
        seen.append(set(index.tolist()))
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert len(seen[0] | seen[1] | seen[2]) == int(np.isin(target, range(5, 10)).sum())


def test_demo_data_seed_and_keep_labels(tmp_path):
    from reuse.data.demo import digits_split

    base = digits_split(range(5, 10), seed=0)
    other = digits_split(range(5, 10), seed=1)
    assert not np.array_equal(base["train"]["index"], other["train"]["index"])
    kept = digits_split([7, 3], seed=0, remap=False)
    assert set(kept["test"]["y"].tolist()) == {3, 7}
    remapped = digits_split([7, 3], seed=0)
    assert (remapped["test"]["classes"][remapped["test"]["y"]] == kept["test"]["y"]).all()


def test_demo_data_files_fit_the_data_contract(tmp_path):
    from reuse.data.dataset import load_data
    from reuse.data.demo import write_digits_npz

    paths = write_digits_npz(tmp_path, classes=range(5, 10))
    ds = load_data(paths["train"])
    assert ds.input_shape == (64,)
    assert len(ds) == len(ds.y) > 500


def test_demo_data_command_line(tmp_path, capsys):
    from reuse.data.demo import main

    assert main([str(tmp_path / "d"), "--classes", "0,2,4"]) == 0
    out = capsys.readouterr().out
    assert out.count("rows") == 3 and "train.npz" in out
    with np.load(tmp_path / "d" / "valid.npz") as npz:
        assert npz["classes"].tolist() == [0, 2, 4]


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("5-12", "Received: classes=[5, 6, 7, 8, 9, 10, 11, 12]"),
        ("five", "Received: classes='five'"),
        ("3,3", "lists a digit twice"),
    ],
)
def test_demo_data_refuses_bad_classes(tmp_path, capsys, classes, message):
    from reuse.data.demo import main

    assert main([str(tmp_path / "d"), "--classes", classes]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err
    assert not (tmp_path / "d").exists()


def test_demo_data_refuses_bad_fractions_and_a_file_as_folder(tmp_path):
    from reuse.core.errors import DataError, UsageError
    from reuse.data.demo import digits_split, write_digits_npz

    with pytest.raises(UsageError, match=r"Received: fractions=\(0.5, 0.5, 0.5\)"):
        digits_split(fractions=(0.5, 0.5, 0.5))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="not a folder"):
        write_digits_npz(blocker)
