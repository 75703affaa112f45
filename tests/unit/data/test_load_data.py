"""reuse.data.load_data: every format, every selection option, every error, and lazy reading."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from reuse.core.errors import DataError, UsageError
from reuse.data import identity as identity_mod
from reuse.data.dataset import DataOptions, Dataset, check_finite, load_data
from reuse.data.idx import write_idx


def _xy(n=30, n_in=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    y = (np.arange(n) % n_classes).astype(np.int64)
    return x, y


def _mnist_like(folder: Path, n=40, prefix="train", gz=True):
    """Four... or two MNIST-style files: uint8 images (n, 6, 5) and labels 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)
    return x, y


def _image_folder(root: Path, classes=("cat", "dog"), per=3, size=(6, 5), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(2)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per):
            shape = (size[0], size[1], 3) if mode == "RGB" else size
            arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(arr, mode=mode).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "xk,yk", [("x", "y"), ("X", "y"), ("x_train", "y_train"), ("features", "labels")]
)
def test_npz_key_styles(tmp_path, xk, yk):
    x, y = _xy()
    np.savez(tmp_path / "d.npz", **{xk: x, yk: y})
    ds = load_data(tmp_path / "d.npz")
    assert len(ds) == 30 and ds.input_shape == (4,)
    xa, ya = ds.arrays()
    np.testing.assert_array_equal(xa, x)
    np.testing.assert_array_equal(ya, y)
    assert ds.y.dtype == np.int64
    assert ds.identity["selection"] == f"x_key={xk};y_key={yk}"


def test_npz_key_override_and_uncompressed_is_memory_mapped(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "d.npz", a=x, b=y, other=y)
    ds = load_data(tmp_path / "d.npz", x_key="a", y_key="b")
    assert isinstance(ds.x, np.memmap)
    np.testing.assert_array_equal(ds.arrays()[0], x)
    np.savez_compressed(tmp_path / "c.npz", x=x, y=y)
    dc = load_data(tmp_path / "c.npz")
    np.testing.assert_array_equal(dc.arrays()[0], x)


def test_npz_split_test_keys(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:5] + 1, y_test=y[:5])
    assert len(load_data(tmp_path / "d.npz")) == 30
    test = load_data(tmp_path / "d.npz", split="test")
    assert len(test) == 5
    np.testing.assert_array_equal(test.arrays()[0], x[:5] + 1)


@pytest.mark.parametrize("labels_ext", [".npy", ".txt", ".csv"])
def test_npy_with_labels_is_memory_mapped(tmp_path, labels_ext):
    x, y = _xy(n=50)
    np.save(tmp_path / "x.npy", x)
    lab = tmp_path / f"y{labels_ext}"
    if labels_ext == ".npy":
        np.save(lab, y)
    else:
        lab.write_text(("label\n" if labels_ext == ".csv" else "") + "\n".join(map(str, y)) + "\n")
    ds = load_data(tmp_path / "x.npy", labels=lab)
    assert isinstance(ds.x, np.memmap)  # not loaded: read batch by batch
    assert ds.y.dtype == np.int64
    got = np.concatenate([xb for _, xb, _ in ds.batches(16)])
    np.testing.assert_array_equal(got, x)
    offsets = [o for o, _, _ in ds.batches(16, start=20)]
    assert offsets == [20, 36]
    assert ds.identity["labels"] == str(lab.resolve())


def test_float_labels_kept_float32(tmp_path):
    x, _ = _xy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", np.linspace(0, 1, 30))
    ds = load_data(tmp_path / "x.npy", labels=tmp_path / "t.npy")
    assert ds.y.dtype == np.float32


def test_hdf5_guessed_and_explicit_keys_and_close(tmp_path):
    import h5py

    x, y = _xy()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["images"] = x
        f["labels"] = y
        f["grp/feat"] = x * 2
    with load_data(tmp_path / "d.h5") as ds:
        assert isinstance(ds.x, h5py.Dataset)  # lazy: read in slices
        np.testing.assert_array_equal(ds.arrays()[0], x)
        np.testing.assert_array_equal(ds.take([5, 1, 3])[0], x[[5, 1, 3]])
        handle = ds.x
    assert not handle.id.valid  # the file was closed
    ds2 = load_data(tmp_path / "d.h5", x_key="grp/feat", y_key="labels", limit=10, seed=0)
    xa, ya = ds2.arrays()
    np.testing.assert_array_equal(xa, x[ds2.indices] * 2)
    ds2.close()


@pytest.mark.slow
def test_hdf5_closes_when_dataset_is_collected(tmp_path):
    import gc

    import h5py

    x, y = _xy()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, y
    ds = load_data(tmp_path / "d.h5")
    train, val = ds.split(0.5, seed=0)
    handle = ds.x
    del ds
    gc.collect()
    assert handle.id.valid  # the subsets still use the file
    assert len(train.arrays()[0]) == 15
    del train, val
    gc.collect()
    assert not handle.id.valid


def test_csv_label_col_by_name_index_and_default(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3,4.5,1\n5,6,1\n")
    ds = load_data(p)
    xa, ya = ds.arrays()
    np.testing.assert_array_equal(xa, np.array([[1, 2], [3, 4.5], [5, 6]], np.float32))
    np.testing.assert_array_equal(ya, [0, 1, 1])
    assert ya.dtype == np.int64
    by_name = load_data(p, label_col="a")
    np.testing.assert_array_equal(by_name.y, [1, 3, 5])
    assert by_name.input_shape == (2,)
    by_index = load_data(p, label_col=1)
    assert by_index.y.dtype == np.float32  # 4.5: float labels stay floats
    plain = tmp_path / "n.csv"
    plain.write_text("1,2,0\n3,4,1\n")
    ds = load_data(plain, label_col="-1")
    np.testing.assert_array_equal(ds.y, [0, 1])
    assert load_data(plain).y is None  # no header, no --label-col: unlabeled


def test_csv_string_labels_become_class_ids(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("f,kind\n1,dog\n2,cat\n3,dog\n")
    ds = load_data(p, label_col="kind")
    assert ds.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(ds.y, [1, 0, 1])


def test_image_folder_gray_lazy_and_scaled(tmp_path):
    root = _image_folder(tmp_path / "imgs", classes=("dog", "cat"), per=3)
    ds = load_data(root)
    assert ds.class_names == ["cat", "dog"]
    assert ds.input_shape == (6, 5)
    np.testing.assert_array_equal(ds.y, [0, 0, 0, 1, 1, 1])
    assert not isinstance(ds.x, np.ndarray)  # decoded on access
    xa, _ = ds.arrays()
    assert xa.dtype == np.float32 and 0.0 <= xa.min() and xa.max() <= 1.0
    from PIL import Image

    raw = np.asarray(Image.open(root / "cat" / "0.png"), dtype=np.float32)
    np.testing.assert_allclose(xa[0], raw / 255.0)
    unscaled = load_data(root, scale=False).arrays()[0]
    np.testing.assert_array_equal(unscaled[0], raw)
    assert ds.identity["hash"] == "sha256-listing"


def test_image_folder_rgb_resized(tmp_path):
    root = _image_folder(tmp_path / "imgs", per=2, mode="RGB")
    ds = load_data(root, image_size="8x7")
    assert ds.input_shape == (8, 7, 3)
    assert ds.arrays()[0].shape == (4, 8, 7, 3)
    assert "image_size=8x7" in ds.identity["selection"]


def test_image_folder_sizes_differ_without_image_size(tmp_path):
    from PIL import Image

    root = _image_folder(tmp_path / "imgs", per=1)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "dog" / "big.png")
    ds = load_data(root)
    with pytest.raises(DataError, match=r"big.png is 9x9, the other images 6x5.*--image-size 6x5"):
        ds.arrays()


@pytest.mark.parametrize("gz", [True, False])
def test_idx_file_finds_its_labels(tmp_path, gz):
    x, y = _mnist_like(tmp_path / "m", gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    ds = load_data(tmp_path / "m" / name)
    assert ds.input_shape == (6, 5)
    if not gz:
        assert isinstance(ds.x, np.memmap)  # uncompressed IDX is memory-mapped
    xa, ya = ds.arrays()
    np.testing.assert_allclose(xa, x / np.float32(255.0), rtol=1e-6)
    assert xa.max() <= 1.0
    np.testing.assert_array_equal(ya, y)


def test_idx_folder_split_and_explicit_labels(tmp_path):
    _mnist_like(tmp_path / "m", n=40, prefix="train")
    _mnist_like(tmp_path / "m", n=20, prefix="t10k")
    assert len(load_data(tmp_path / "m")) == 40
    test = load_data(tmp_path / "m", split="test")
    assert len(test) == 20 and test.identity["selection"] == "split=test"
    np.save(tmp_path / "lab.npy", np.zeros(40, np.int64))
    ds = load_data(tmp_path / "m" / "train-images-idx3-ubyte.gz", labels=tmp_path / "lab.npy")
    assert (ds.y == 0).all()


def test_data_options_load_split(tmp_path):
    _mnist_like(tmp_path / "m", n=40)
    opts = DataOptions(data=str(tmp_path / "m"), classes="0-4", val_split=0.25, seed=3)
    train, val = opts.load_split()
    assert len(train) + len(val) == 20 and len(val) == 5
    assert not set(train.indices) & set(val.indices)
    assert train.identity["selection"] != val.identity["selection"]
    again, _ = opts.load_split()
    np.testing.assert_array_equal(again.indices, train.indices)
    assert DataOptions(data=str(tmp_path / "m")).load_split()[1] is None


def _digits(tmp_path, n=100):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = (np.arange(n) % 10).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return tmp_path / "d.npz", x, y


@pytest.mark.parametrize(
    "spec,wanted", [("5-9", [5, 6, 7, 8, 9]), ("1,3,7", [1, 3, 7]), ("0,5-6", [0, 5, 6])]
)
def test_classes_remap_and_record_mapping(tmp_path, spec, wanted):
    path, x, y = _digits(tmp_path)
    ds = load_data(path, classes=spec)
    assert ds.class_map == {c: i for i, c in enumerate(wanted)}
    assert sorted(set(ds.y.tolist())) == list(range(len(wanted)))
    xa, ya = ds.arrays()
    np.testing.assert_array_equal(xa, x[np.isin(y, wanted)])
    np.testing.assert_array_equal(np.array(wanted)[ya], y[ds.indices])
    assert ds.identity["selection"].startswith(f"classes={','.join(map(str, wanted))}")


def test_classes_keeps_class_names(tmp_path):
    root = _image_folder(tmp_path / "imgs", classes=("a", "b", "c"), per=2)
    ds = load_data(root, classes="1-2")
    assert ds.class_names == ["b", "c"] and ds.class_map == {1: 0, 2: 1}


def test_per_class_first_n_in_order_without_seed(tmp_path):
    path, _, y = _digits(tmp_path)
    ds = load_data(path, per_class=2)
    assert len(ds) == 20
    np.testing.assert_array_equal(ds.indices, np.arange(20))
    assert np.bincount(ds.y).tolist() == [2] * 10


def test_per_class_seeded_shuffle(tmp_path):
    path, _, _ = _digits(tmp_path)
    a = load_data(path, per_class=3, seed=1)
    b = load_data(path, per_class=3, seed=1)
    c = load_data(path, per_class=3, seed=2)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert np.bincount(a.y).tolist() == [3] * 10
    assert (np.diff(a.indices) > 0).all()  # source order kept for lazy reads
    assert a.identity["selection"] != c.identity["selection"]


def test_limit_first_or_seeded(tmp_path):
    path, _, _ = _digits(tmp_path)
    ds = load_data(path, limit=7)
    np.testing.assert_array_equal(ds.indices, np.arange(7))
    r = load_data(path, limit=7, seed=0)
    assert len(r) == 7 and not np.array_equal(r.indices, np.arange(7))
    both = load_data(path, classes="5-9", per_class=4, limit=6, seed=0)
    assert len(both) == 6 and set(both.y.tolist()) <= set(range(5))


def test_seed_alone_does_not_change_the_selection_identity(tmp_path):
    path, _, _ = _digits(tmp_path)
    assert load_data(path, seed=5).identity["selection"] == load_data(path).identity["selection"]


def test_split_is_seeded_and_disjoint(tmp_path):
    path, _, _ = _digits(tmp_path)
    ds = load_data(path)
    train, val = ds.split(0.2, seed=0)
    assert len(val) == 20 and len(train) == 80
    assert sorted(np.concatenate([train.indices, val.indices]).tolist()) == list(range(100))
    t2, _ = ds.split(0.2, seed=0)
    np.testing.assert_array_equal(t2.indices, train.indices)


def test_identity_hash_is_content_and_computed_once(tmp_path, monkeypatch):
    path, _, _ = _digits(tmp_path)
    a = load_data(path).identity
    assert a["hash"] == "sha256" and len(a["sha256"]) == 64 and a["size"] == path.stat().st_size
    import hashlib

    assert a["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(identity_mod.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    load_data(path)
    assert calls == []  # memoized on (path, size, mtime)


def test_large_files_hash_a_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(identity_mod, "SAMPLE_ABOVE", 1000)
    monkeypatch.setattr(identity_mod, "_EDGE", 64)
    monkeypatch.setattr(identity_mod, "_BLOCK", 16)
    p = tmp_path / "x.npy"
    np.save(p, np.arange(2000, dtype=np.float32).reshape(500, 4))
    ident = identity_mod.file_identity(p)
    assert ident["hash"] == "sha256-sampled"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF  # the last bytes are always in the sample
    p.write_bytes(bytes(raw))
    assert identity_mod.file_identity(p)["sha256"] != ident["sha256"]


def test_reshape_for_flatten_channel_and_error(tmp_path):
    _mnist_like(tmp_path / "m")
    ds = load_data(tmp_path / "m")
    flat = ds.reshape_for((None, 30))
    assert flat.input_shape == (30,)
    assert flat.arrays()[0].shape == (40, 30)
    chan = ds.reshape_for((None, 6, 5, 1))
    assert chan.arrays()[0].shape == (40, 6, 5, 1)
    assert ds.reshape_for((None, None, None)) is ds
    with pytest.raises(
        DataError, match=r"input shape \(6, 5\) does not fit the model's input \(784,\)"
    ):
        ds.reshape_for((None, 784))


def test_error_missing_keys_lists_keys_present(tmp_path):
    np.savez(tmp_path / "d.npz", a=np.zeros((3, 2)), b=np.zeros(3))
    with pytest.raises(DataError, match=r"d.npz has no inputs .*keys present: a, b"):
        load_data(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"no key 'zz' \(keys present: a, b\)"):
        load_data(tmp_path / "d.npz", x_key="a", y_key="zz")


def test_error_missing_hdf5_key(tmp_path):
    import h5py

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["feats"] = np.zeros((3, 2))
        f["y"] = np.zeros(3)
    with pytest.raises(DataError, match=r"d.h5 has no key 'x' \(keys present: feats, y\)"):
        load_data(tmp_path / "d.h5", x_key="x")


def test_error_length_mismatch(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 2)), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match=r"d.npz: the inputs have 5 rows but the labels have 4"):
        load_data(tmp_path / "d.npz")


def test_error_nan_inf_in_batches_and_check_finite(tmp_path):
    x, y = _xy(n=40)
    x[25, 1] = np.nan
    x[33, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    ds = load_data(tmp_path / "x.npy")
    seen = []
    with pytest.raises(
        DataError, match=r"x.npy: NaN or Inf in the inputs, rows 20..29 \(first at row 25"
    ):
        for offset, _, _ in ds.batches(10):
            seen.append(offset)
    assert seen == [0, 10]
    with pytest.raises(DataError, match=r"rows 0..39"):
        check_finite(ds)
    assert len(list(ds.batches(10, check_finite=False))) == 4


def test_error_nan_in_labels(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0.5, np.nan, 1.0]))
    with pytest.raises(DataError, match=r"NaN or Inf in the labels \(first at row 1\)"):
        load_data(tmp_path / "d.npz")


def test_error_label_out_of_range_for_model(tmp_path):
    path, _, _ = _digits(tmp_path)
    ds = load_data(path)
    with pytest.raises(
        DataError, match=r"d.npz: label 9 is out of range for a model with 5 output"
    ):
        ds.check_labels(5)
    load_data(path, classes="5-9").check_labels(5)  # remapped to 0..4: fits


def test_error_negative_label(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0, -1, 1]))
    with pytest.raises(DataError, match=r"label -1 is negative"):
        load_data(tmp_path / "d.npz")


def test_error_float_labels_with_classes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(DataError, match=r"labels are floats .*--classes needs"):
        load_data(tmp_path / "d.npz", classes="0-1")


def test_error_wrong_label_dtype(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([1j, 2j, 3j]))
    with pytest.raises(DataError, match=r"labels have dtype complex128"):
        load_data(tmp_path / "d.npz")


def test_error_empty_selection(tmp_path):
    path, _, _ = _digits(tmp_path)
    with pytest.raises(
        DataError, match=r"--classes 10-12 selects no rows \(labels present: 0, 1, .*9\)"
    ):
        load_data(path, classes="10-12")


def test_error_unsupported_extension(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match=r"d.parquet: unsupported data format '.parquet'"):
        load_data(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"no such file"):
        load_data(tmp_path / "missing.npz")


def test_error_missing_labels_for_npy(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(DataError, match=r"x.npy has no labels — pass the labels with --labels"):
        load_data(tmp_path / "x.npy", require_labels=True)
    with pytest.raises(DataError, match=r"x.npy has no labels; --classes needs them"):
        load_data(tmp_path / "x.npy", classes="1")
    assert load_data(tmp_path / "x.npy").y is None  # fine for predict


def test_error_image_folder_without_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"flat has no class sub-folders"):
        load_data(tmp_path / "flat")


def test_error_corrupt_image_names_file(tmp_path):
    root = _image_folder(tmp_path / "imgs", per=1)
    (root / "dog" / "zz.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"zz.png: cannot decode the image"):
        load_data(root).arrays()


def test_error_option_for_another_format(tmp_path):
    path, _, _ = _digits(tmp_path)
    with pytest.raises(
        UsageError,
        match=r"--label-col cannot be used with .*d.npz \(a .npz file\) — --label-col is for CSV files",
    ):
        load_data(path, label_col="y")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"classes": "9-5"}, r"`--classes` must be .*Received: classes='9-5'"),
        ({"classes": "a"}, r"Received: classes='a'"),
        ({"per_class": 0}, r"`--per-class` must be a positive integer. Received: per_class=0"),
        ({"limit": -1}, r"`--limit` must be a positive integer. Received: limit=-1"),
        ({"split": "dev"}, r"`--split` must be train or test. Received: split='dev'"),
    ],
)
def test_error_malformed_options(tmp_path, kwargs, match):
    path, _, _ = _digits(tmp_path)
    with pytest.raises(UsageError, match=match):
        load_data(path, **kwargs)


def test_error_val_split_out_of_range(tmp_path):
    path, _, _ = _digits(tmp_path)
    with pytest.raises(UsageError, match=r"Received: val_split=1.5"):
        load_data(path).split(1.5)


def test_error_truncated_idx(tmp_path):
    x, _ = _mnist_like(tmp_path / "m", gz=False)
    p = tmp_path / "m" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(DataError, match=r"truncated"):
        load_data(p)
    q = tmp_path / "m" / "bad-images-idx3-ubyte.gz"
    q.write_bytes(gzip.compress(b"\x01\x02\x03\x04"))
    with pytest.raises(DataError, match=r"not an IDX file"):
        load_data(q)


def test_dataset_constructed_directly_still_works():
    # The original contract: Dataset(path, x, y, indices, class_map, identity).
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = Dataset("mem", x, None, np.arange(6, dtype=np.int64), None, {"selection": ""})
    assert ds.input_shape == (2,) and len(ds) == 6
    np.testing.assert_array_equal(ds.arrays()[0], x)
