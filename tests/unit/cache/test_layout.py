"""`reuse.cache.layout`: the names, marks and compression specs the writer, reader and inspect share."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from reuse.cache import CACHE_MARK, is_cache, parse_compression, part_path, tap_dataset_name
from reuse.cache.layout import attr_value
from reuse.core.errors import UsageError


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, (None, None, "none")),
        ("none", (None, None, "none")),
        (" LZF ", ("lzf", None, "lzf")),
        ("gzip", ("gzip", 4, "gzip:4")),
        ("gzip:0", ("gzip", 0, "gzip:0")),
        ("gzip:9", ("gzip", 9, "gzip:9")),
    ],
)
def test_parse_compression(spec, expected):
    assert parse_compression(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [("gzip:10", "0-9"), ("gzip:x", "0-9"), ("zstd", "unknown"), ("lzf:3", "unknown")],
)
def test_parse_compression_refuses(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_compression(spec)


def test_part_path_is_hidden_beside_the_output(tmp_path):
    assert part_path(tmp_path / "feats.h5") == tmp_path / ".feats.part.h5"
    assert part_path(tmp_path / "feats.hdf5") == tmp_path / ".feats.part.hdf5"
    assert part_path("feats") == part_path("feats").with_name(".feats.part.h5")


def test_tap_dataset_names_escape_nesting():
    assert tap_dataset_name("hidden2") == "features/hidden2"
    assert tap_dataset_name("base/block_1") == "features/base%2Fblock_1"
    # a literal % is escaped first, so two different taps never share a dataset
    assert tap_dataset_name("a%2Fb") != tap_dataset_name("a/b")


def test_is_cache(tmp_path):
    with h5py.File(tmp_path / "feats.h5", "w") as f:
        f.attrs[CACHE_MARK] = 1
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = np.zeros(3)
    assert is_cache(tmp_path / "feats.h5")
    assert not is_cache(tmp_path / "data.h5")
    assert not is_cache(tmp_path / "missing.h5")


def test_attr_value_gives_plain_python():
    assert attr_value(b"hidden2") == "hidden2"
    assert attr_value(np.int64(7)) == 7 and type(attr_value(np.int64(7))) is int
    assert attr_value(np.bool_(True)) is True
    assert attr_value("x") == "x"
