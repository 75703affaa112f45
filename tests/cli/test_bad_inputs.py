"""Bad inputs and faults, one per kind (docs/errors.md): each gets one `Error:` line that says
what to do, its exit code, no traceback, no file left behind, and its inputs untouched.

Every case runs a real command in-process on small models (tests.helpers) and compares a
snapshot of the folders involved (names and SHA-256 of every file, hidden ones included)
before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, classification_data, cli, convnet, mlp, save_npz


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under `folders` (hidden ones too) -> its SHA-256."""
    files = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                files[str(path)] = "folder"
    return files


def refused(result, code: int, *needles: str) -> str:
    """Assert the exit code, exactly one `Error:` line holding every needle, no traceback."""
    assert result.exit_code == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "REUSE_DEBUG" not in lines[0], f"the generic line: {lines[0]}"
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder of inputs: a partly frozen MLP, a small RGB convnet, data (one with a NaN)."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    model = mlp(n_in=8, hidden=3, units=12, n_out=3, seed=1)
    for name in ("hidden1", "hidden2"):
        model.get_layer(name).trainable = False
    model.save(folder / "base.keras")
    convnet(size=8, channels=3).save(folder / "rgb.keras")
    x, y = classification_data(60)
    save_npz(folder / "train.npz", x, y)
    x_nan = x.copy()
    x_nan[7, 2] = np.nan
    save_npz(folder / "nan.npz", x_nan, y)
    save_npz(folder / "first.npz", np.zeros((6, 3, 8, 8), "float32"), np.arange(6) % 3)
    return folder


@pytest.fixture
def out(tmp_path):
    """An empty output folder."""
    return tmp_path


def _check(work: Path, out: Path, args: list, code: int, *needles: str) -> str:
    before = snapshot(work, out)
    result = cli([str(a) for a in args])
    line = refused(result, code, *needles)
    assert snapshot(work, out) == before, "a file was left behind or an input changed"
    return line


# --- shapes -------------------------------------------------------------------------------


def test_channels_first_data(work, out):
    _check(
        work,
        out,
        ["predict", work / "rgb.keras", "--data", work / "first.npz", "-o", out / "p.npy"],
        1,
        "(3, 8, 8) does not fit the model's input (8, 8, 3)",
        "np.transpose(x, (0, 2, 3, 1))",
    )


# --- files that cannot be decoded ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.npz", b"", "the file is empty or ends early"),
        ("garbage.npz", b"PK\x03\x04" + b"\x00" * 40, "cannot read as .npz"),
        ("latin1.csv", "größe,label\n1,0\n".encode("latin-1"), "not UTF-8 text"),
        ("empty.npy", b"", "the file is empty or ends early"),
    ],
    ids=["empty-npz", "corrupt-npz", "not-utf8-csv", "empty-npy"],
)
def test_undecodable_data(work, out, tmp_path_factory, name, content, needle):
    bad = tmp_path_factory.mktemp("undecodable") / name
    bad.write_bytes(content)
    _check(bad.parent, out, ["evaluate", work / "base.keras", "--data", bad, "--json"], 1, needle)


def test_pickled_data(work, out, tmp_path):
    bad = tmp_path / "objects.npy"
    np.save(bad, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _check(
        tmp_path,
        out,
        ["predict", work / "base.keras", "--data", bad, "-o", out / "p.npy"],
        1,
        "pickled Python objects, which reuse never loads",
    )


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.keras", b"", "not a valid .keras file"),
        ("text.h5", b"hello, not HDF5", "not a readable HDF5 file"),
    ],
    ids=["empty-keras", "text-as-h5"],
)
def test_undecodable_model(work, out, tmp_path, name, content, needle):
    bad = tmp_path / name
    bad.write_bytes(content)
    _check(tmp_path, out, ["evaluate", bad, "--data", work / "train.npz", "--json"], 1, needle)


def test_unknown_layer_class_is_named(work, out, tmp_path):
    """A .keras file whose layer class is not available: the class is named, not its model."""
    bad = tmp_path / "quantum.keras"
    with zipfile.ZipFile(work / "base.keras") as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = config["config"]["layers"][1]
                layer.update(module=None, class_name="QuantumDense")
                layer["registered_name"] = "quantum>QuantumDense"
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    line = _check(tmp_path, out, ["inspect", bad], 1, "QuantumDense")
    assert "Sequential" not in line


# --- outputs that cannot be written -----------------------------------------------------------


def _tmpfs(folder: Path, options: str):
    """Mount a 1 MiB tmpfs with `options` on `folder`, yield it, unmount it (root only: the
    test skips elsewhere)."""
    folder.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size=1m{options}", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB file system."""
    yield from _tmpfs(tmp_path / "full", "")


@pytest.fixture
def read_only(tmp_path):
    """A read-only file system."""
    yield from _tmpfs(tmp_path / "ro", ",ro")


def _cache_larger_than_the_disk(folder: Path) -> None:
    """wide.keras and big.npz in `folder`: their cache needs about 1.5 MiB."""
    wide = mlp(n_in=8, hidden=2, units=64, n_out=3, seed=1)
    wide.get_layer("hidden1").trainable = False
    wide.save(folder / "wide.keras")
    x, y = classification_data(6000)
    save_npz(folder / "big.npz", x, y)


def test_full_disk_while_writing_a_cache(work, full_disk, tmp_path):
    """The cache outgrows the disk: one line naming the output, and no .part.h5 left on it."""
    _cache_larger_than_the_disk(tmp_path)
    _check(
        tmp_path,
        full_disk,
        [
            "cache-features",
            tmp_path / "wide.keras",
            "--data",
            tmp_path / "big.npz",
            "-o",
            full_disk / "feats.h5",
        ],
        1,
        f"cannot write {full_disk / 'feats.h5'}: no space left on the device",
    )
    assert list(full_disk.iterdir()) == []


@pytest.mark.slow
def test_full_disk_in_a_real_process_exits_cleanly(full_disk, tmp_path):
    """The same in a real process: exit 1, not a crash at exit (h5py segfaulted, exit 139)."""
    from tests.helpers import shell

    _cache_larger_than_the_disk(tmp_path)
    proc = shell(
        f"reuse cache-features wide.keras --data big.npz -o {full_disk / 'feats.h5'}", tmp_path
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "no space left on the device" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(full_disk.iterdir()) == []


def test_read_only_output_folder(work, read_only):
    _check(
        work,
        read_only,
        ["freeze", work / "base.keras", "--upto", "hidden1", "-o", read_only / "f.keras"],
        1,
        f"cannot write into {read_only}",
    )


def test_output_is_a_folder(work, out):
    (out / "dir.keras").mkdir()
    _check(
        work,
        out,
        ["freeze", work / "base.keras", "--upto", "hidden1", "-o", out / "dir.keras"],
        1,
        "is a folder",
    )


# --- nothing half-written ---------------------------------------------------------------------


def test_cache_of_data_with_nan_leaves_no_part_file(work, out):
    _check(
        work,
        out,
        ["cache-features", work / "base.keras", "--data", work / "nan.npz", "-o", out / "c.h5"],
        1,
        "NaN or Inf in the inputs",
    )


def test_resume_without_a_checkpoint_creates_nothing(work, out):
    _check(
        work,
        out,
        [
            "finetune",
            work / "base.keras",
            "--data",
            work / "train.npz",
            "--resume",
            "--checkpoint-dir",
            out / "ckpt",
            "-o",
            out / "t.keras",
        ],
        2,
        "no checkpoint in",
    )


# --- usage errors -----------------------------------------------------------------------------


def test_val_split_out_of_range_is_a_usage_error(work, out):
    _check(
        work,
        out,
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--val-split", "1.5"],
        2,
        "`--val-split` must be between 0 and 1",
    )


def test_missing_optional_extra_is_named_before_the_work(work, out, monkeypatch):
    """`lr-find --plot` without matplotlib: refused before the sweep, with the extra's name."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "matplotlib" else real(name, *a, **k),
    )
    _check(
        work,
        out,
        [
            "lr-find",
            work / "base.keras",
            "--data",
            work / "train.npz",
            "--plot",
            out / "lr.png",
        ],
        2,
        "--plot needs matplotlib",
        "pip install 'keras-reuse[plot]'",
    )


@pytest.mark.slow
def test_usage_errors_start_no_tensorflow(work, out):
    """Usage errors answer before TensorFlow starts (a fresh process; TF never imported)."""
    cases = [
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--val-split", "1.5"],
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--resume",
         "--checkpoint-dir", out / "none"],
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--epochs", "0"],
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--optimizer", "bogus"],
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--schedule", "bogus"],
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--head", "dense:x"],
        ["cache-features", work / "base.keras", "--data", work / "train.npz", "--batch-size", "0",
         "-o", out / "c.h5"],
        ["cache-features", work / "base.keras", "--data", work / "train.npz", "--compression",
         "zip", "-o", out / "c.h5"],
        ["lr-find", work / "base.keras", "--data", work / "train.npz", "--steps", "0"],
        ["check", work / "base.keras", "--data", work / "train.npz", "--steps", "0"],
        ["evaluate", work / "base.keras", "--data", work / "train.npz", "--batch-size", "0"],
        ["sparsify", work / "base.keras", "--sparsity", "1.5", "-o", out / "s.keras"],
    ]  # fmt: skip
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from reuse.cli import app, normalize_argv\n"
        "codes = [CliRunner().invoke(app, normalize_argv(a)).exit_code for a in json.loads(sys.argv[1])]\n"
        "print(json.dumps([codes, 'tensorflow' in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([[str(a) for a in c] for c in cases])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    codes, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert codes == [2] * len(cases)
    assert not tf_loaded
    assert list(out.iterdir()) == []


# --- caches -----------------------------------------------------------------------------------


def test_cache_changed_after_writing_is_refused(work, out):
    import h5py

    cache = out / "c.h5"
    result = cli(["cache-features", work / "base.keras", "--data", work / "train.npz", "-o", cache])
    assert result.exit_code == 0, result.stderr
    with h5py.File(cache, "r+") as f:
        f["features/hidden2"][3] = f["features/hidden2"][3] + 1.0
    line = _check(
        work,
        out,
        [
            "finetune",
            work / "base.keras",
            "--data",
            work / "train.npz",
            "--features",
            cache,
            "-o",
            out / "t.keras",
            "--epochs",
            "1",
        ],
        1,
        "are damaged (its values changed after it was written)",
    )
    assert "reuse cache-features" in line  # the command that rebuilds it


def test_cache_with_a_corrupt_chunk_is_refused(work, out):
    import h5py

    cache = out / "c.h5"
    result = cli(["cache-features", work / "base.keras", "--data", work / "train.npz", "-o", cache])
    assert result.exit_code == 0, result.stderr
    with h5py.File(cache, "r") as f:
        offset = f["features/hidden2"].id.get_chunk_info(0).byte_offset
    with open(cache, "r+b") as fh:  # flip one byte on disk, below HDF5
        fh.seek(offset + 20)
        byte = fh.read(1)
        fh.seek(offset + 20)
        fh.write(bytes([byte[0] ^ 0xFF]))
    _check(
        work,
        out,
        ["finetune", work / "base.keras", "--data", work / "train.npz", "--features", cache,
         "-o", out / "t.keras", "--epochs", "1"],
        1,
        "a chunk fails its checksum",
    )  # fmt: skip


# --- TensorFlow errors ------------------------------------------------------------------------


def test_labels_beyond_the_models_classes(work, out, tmp_path):
    x, _ = classification_data(30)
    bad = save_npz(tmp_path / "labels7.npz", x, np.full(30, 7))
    _check(
        tmp_path,
        out,
        ["evaluate", work / "base.keras", "--data", bad, "--json"],
        1,
        "labels range over 7..7 but the model has 3 outputs",
    )


# --- Ctrl-C -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "REUSE_DEBUG"])
def test_ctrl_c_while_training(work, tmp_path, debug):
    """SIGINT in the middle of training: "interrupted", exit 130, no model written; with
    REUSE_DEBUG=1 the traceback comes first."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    env["REUSE_TEST_EPOCH_DELAY"] = "0.3"
    env.pop("REUSE_DEBUG", None)
    if debug:
        env["REUSE_DEBUG"] = "1"
    ckpt = tmp_path / "ckpt"
    args = ["finetune", str(work / "base.keras"), "--data", str(work / "train.npz"),
            "--epochs", "500", "--checkpoint-dir", str(ckpt), "-o", str(tmp_path / "t.keras")]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "reuse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 240
    while not (ckpt / "state.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert lines == ["Error: interrupted — nothing was written; run the command again"], stderr
    assert ("Traceback" in stderr) is debug
    assert not (tmp_path / "t.keras").exists()
