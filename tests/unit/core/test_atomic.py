"""reuse.core.atomic: the one way outputs are written (temp beside target, fsync, rename)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from reuse.core import atomic
from reuse.core.errors import OutputError


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def io_log(monkeypatch):
    """Record, in order, each fsync (with the path of its descriptor) and each os.replace."""
    log: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        log.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def test_success_renames_the_temporary_file_onto_the_target(tmp_path):
    target = tmp_path / "out.weights.h5"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.") and tmp.name.endswith(".part.weights.h5")
        assert not tmp.exists()
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    assert _listing(tmp_path) == ["out.weights.h5"]


def test_suffix_overrides_the_temporary_extension(tmp_path):
    with atomic.atomic_path(tmp_path / "model", suffix=".keras") as tmp:
        assert tmp.name.endswith(".part.keras")
        tmp.write_text("x")
    assert (tmp_path / "model").read_text() == "x"


def test_success_replaces_an_existing_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic.atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert _listing(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("error", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_failure_leaves_no_file_and_the_old_target_intact(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise error
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["out.txt"]


def test_failure_without_a_previous_target_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(tmp_path / "out.keras") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert _listing(tmp_path) == []


def test_a_failed_rename_removes_the_temporary_file(tmp_path):
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a file cannot replace a folder
    with pytest.raises(OSError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("file")
    assert _listing(tmp_path) == ["taken"]
    assert _listing(target) == ["inside"]


def test_fsync_the_file_before_the_rename_then_the_folder(tmp_path, io_log):
    target = tmp_path / "out.txt"
    with atomic.atomic_path(target) as tmp:
        tmp.write_text("data")
    kinds = [kind for kind, _ in io_log]
    assert kinds == ["fsync", "replace", "fsync"]
    assert io_log[0][1] == str(tmp)
    assert io_log[1][1] == f"{tmp} -> {target}"
    assert io_log[2][1] == str(tmp_path)


def test_folder_target_is_written_whole(tmp_path, io_log):
    target = tmp_path / "saved_model"
    with atomic.atomic_path(target) as tmp:
        (tmp / "variables").mkdir(parents=True)
        (tmp / "saved_model.pb").write_bytes(b"pb")
        (tmp / "variables" / "variables.index").write_bytes(b"ix")
    assert (target / "saved_model.pb").read_bytes() == b"pb"
    assert (target / "variables" / "variables.index").read_bytes() == b"ix"
    assert _listing(tmp_path) == ["saved_model"]
    synced = [path for kind, path in io_log if kind == "fsync"]
    # every file and folder of the tree, before the rename; then the parent folder
    assert {Path(p).name for p in synced[:-1]} >= {
        "saved_model.pb",
        "variables.index",
        "variables",
    }
    assert synced[-1] == str(tmp_path)


def test_folder_target_replaces_an_existing_folder(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    with atomic.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.pb").write_bytes(b"new")
    assert _listing(target) == ["new.pb"]
    assert _listing(tmp_path) == ["export"]


def test_failed_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.pb").write_bytes(b"half")
            raise RuntimeError
    assert _listing(target) == ["old.pb"]
    assert _listing(tmp_path) == ["export"]


def test_folder_swap_puts_the_old_folder_back_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name.startswith(".export.") and ".old" not in Path(src).name:
            raise OSError(errno.EIO, "I/O error", str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        with atomic.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new.pb").write_bytes(b"new")
    assert _listing(target) == ["old.pb"]
    assert _listing(tmp_path) == ["export"]


def test_atomic_write_text_and_bytes(tmp_path, io_log):
    with atomic.atomic_write(tmp_path / "a.csv", newline="") as f:
        f.write("x,y\r\n1,2\r\n")
    with atomic.atomic_write(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    written = atomic.write_text(tmp_path / "c.json", "{}\n")
    assert (tmp_path / "a.csv").read_bytes() == b"x,y\r\n1,2\r\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert written == tmp_path / "c.json" and written.read_text() == "{}\n"
    assert [kind for kind, _ in io_log].count("fsync") == 6  # each file and the folder, 3 times
    assert _listing(tmp_path) == ["a.csv", "b.bin", "c.json"]


def test_commit_renames_a_writers_own_temporary_file(tmp_path, io_log):
    part = tmp_path / ".cache.part.h5"
    part.write_bytes(b"rows")
    atomic.commit(part, tmp_path / "cache.h5")
    assert _listing(tmp_path) == ["cache.h5"]
    assert [kind for kind, _ in io_log] == ["fsync", "replace", "fsync"]


def test_errors_while_writing_name_the_target_not_the_temporary_file(tmp_path):
    target = tmp_path / "out.keras"
    with pytest.raises(OSError) as info:
        with atomic.atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(target)


def test_errors_about_other_paths_pass_unchanged(tmp_path):
    other = str(tmp_path / "input.npz")
    with pytest.raises(FileNotFoundError) as info:
        with atomic.atomic_path(tmp_path / "out.keras"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", other)
    assert info.value.filename == other


def test_a_folder_that_cannot_be_written_names_the_target(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".out.x.part.keras"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as info:
        with atomic.atomic_path(tmp_path / "out.keras"):
            pytest.fail("the block must not run")
    assert info.value.errno == errno.EROFS
    assert info.value.filename == str(tmp_path / "out.keras")


def test_check_output_path(tmp_path):
    model = tmp_path / "m.keras"
    model.write_text("m")
    assert atomic.check_output_path(tmp_path / "o.keras", [model]) == tmp_path / "o.keras"
    assert atomic.check_output_path(model, [model], in_place=True) == model
    with pytest.raises(OutputError, match="is the input file"):
        atomic.check_output_path(model, [None, model])
    with pytest.raises(OutputError, match="is a folder"):
        atomic.check_output_path(tmp_path, [model])
    with pytest.raises(OutputError, match="does not exist"):
        atomic.check_output_path(tmp_path / "nope" / "o.keras", [model])
