"""A truncated feature cache given to finetune: one line that gives h5py's reason whole.
The reason used to be cut at 100 characters in mid-phrase (`... stored_eof =)`)."""

from __future__ import annotations

import re

from tests.helpers import classification_data, cli, frozen_mlp, save_npz


def test_a_truncated_cache_names_the_whole_reason(tmp_path):
    frozen_mlp(upto=2).save(tmp_path / "frozen.keras")
    save_npz(tmp_path / "train.npz", *classification_data(40, n_classes=3))
    cache = tmp_path / "feats.h5"
    made = cli(
        ["cache-features", tmp_path / "frozen.keras", "--data", tmp_path / "train.npz", "-o", cache]
    )
    assert made.exit_code == 0, made.stderr
    cut = tmp_path / "cut.h5"
    cut.write_bytes(cache.read_bytes()[:4000])

    run = ["finetune", tmp_path / "frozen.keras", "--data", tmp_path / "train.npz"]
    result = cli([*run, "--features", cut, "--epochs", "1", "-o", tmp_path / "t.keras"])
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"Error: {cut} is not a readable HDF5 file (truncated file: eof = 4000"
    )
    assert re.search(r"stored_eof = \d+\) — rebuild the cache$", lines[0]), lines[0]
    assert "Unable to synchronously open" not in lines[0]
    assert len(cut.read_bytes()) == 4000
    assert not (tmp_path / "t.keras").exists()
