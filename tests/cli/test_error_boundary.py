"""The CLI error boundary: every row of reuse.cli.errors.ERROR_TABLE gives one `Error:` line on
stderr, its exit code, and no traceback."""

from __future__ import annotations

import errno
import tempfile
import tomllib

import pytest
import typer

from reuse.cli import errors
from reuse.cli.common import command
from reuse.core import errors as E
from tests.helpers import ROOT, cli


def _run(exc: BaseException):
    """Invoke a one-command app whose command raises `exc` inside the boundary."""
    from typer.testing import CliRunner

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    @command
    def boom() -> None:
        raise exc

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 keeps them apart already
        runner = CliRunner()
    return runner.invoke(app, [], catch_exceptions=False)


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0][len("Error: ") :]


ROWS = [
    (
        E.UsageError("--lr must be positive", "pass --lr 1e-3"),
        2,
        "--lr must be positive — pass --lr 1e-3",
    ),
    (E.DataError("x.npz has no 'y'", "add labels"), 1, "x.npz has no 'y' — add labels"),
    (E.SpecError("bad spec 'adamw:'"), 2, "bad spec 'adamw:'"),
    (KeyboardInterrupt(), 130, "interrupted — nothing was written; run the command again"),
    (MemoryError(), 1, "out of memory — use a smaller --batch-size or --limit"),
    (
        OSError(errno.EROFS, "Read-only file system", "/ro/out.keras"),
        1,
        "cannot write /ro/out.keras: read-only file system — choose another -o",
    ),
    (
        OSError(errno.ENOSPC, "No space left on device", "/full/out.h5"),
        1,
        "cannot write /full/out.h5: no space left on the device — free some space, or choose another -o on another disk",
    ),
    (
        OSError(errno.ENOSPC, "No space left on device"),
        1,
        "cannot write: no space left on the device — free some space, or choose another -o on another disk",
    ),
    (
        OSError(errno.EDQUOT, "Disk quota exceeded", "/q/out.h5"),
        1,
        "cannot write /q/out.h5: disk quota exceeded — free some space, or choose another -o on another disk",
    ),
    (
        FileNotFoundError(errno.ENOENT, "No such file or directory", "data.npz"),
        1,
        "no such file or folder: data.npz — check the path",
    ),
    (
        PermissionError(errno.EACCES, "Permission denied", "/root/x.keras"),
        1,
        "permission denied: /root/x.keras — check its permissions; to write, choose another -o",
    ),
    (
        PermissionError(errno.EPERM, "Operation not permitted", "/x"),
        1,
        "operation not permitted: /x — check its permissions; to write, choose another -o",
    ),
    (
        # h5py's way: the errno is only in the message
        OSError(
            "Unable to synchronously create file (unable to open file: name = '/ro/f.part.h5', "
            "errno = 30, error message = 'Read-only file system', flags = 13, o_flags = 242)"
        ),
        1,
        "cannot write /ro/f.part.h5: read-only file system — choose another -o",
    ),
    (
        ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"),
        1,
        "this needs matplotlib, which is not installed — install it with: pip install 'keras-reuse[plot]'",
    ),
    (
        ModuleNotFoundError("No module named 'sklearn.datasets'", name="sklearn.datasets"),
        1,
        "this needs sklearn, which is not installed — install it with: pip install 'keras-reuse[demo]'",
    ),
    (
        ImportError("cannot import name 'safe_open' from 'safetensors'", name="safetensors"),
        1,
        "safetensors cannot be imported (cannot import name 'safe_open' from 'safetensors') — "
        "reinstall it with: pip install 'keras-reuse[safetensors]'",
    ),
    # Unknown cases keep the generic line.
    (
        ModuleNotFoundError("No module named 'nothere'", name="nothere"),
        1,
        "ModuleNotFoundError: No module named 'nothere' — rerun with REUSE_DEBUG=1 for the traceback",
    ),
    (
        OSError(errno.EIO, "Input/output error", "/dev/x"),
        1,
        "OSError: [Errno 5] Input/output error: '/dev/x' — rerun with REUSE_DEBUG=1 for the traceback",
    ),
    (
        ValueError("first line\nsecond line"),
        1,
        "ValueError: first line — rerun with REUSE_DEBUG=1 for the traceback",
    ),
    (
        RuntimeError(""),
        1,
        "RuntimeError: RuntimeError — rerun with REUSE_DEBUG=1 for the traceback",
    ),
]


@pytest.mark.parametrize(("exc", "code", "message"), ROWS, ids=lambda v: type(v).__name__)
def test_each_row_gives_one_error_line_and_its_exit_code(exc, code, message, monkeypatch):
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    result = _run(exc)
    assert result.exit_code == code
    assert _one_error_line(result) == message
    assert result.stdout == ""


def test_every_library_error_type_keeps_its_message_and_exit_code(monkeypatch):
    monkeypatch.delenv("REUSE_DEBUG", raising=False)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    kinds = [E.ReuseError, *subclasses(E.ReuseError)]
    assert {E.UsageError, E.SpecError, E.CacheMismatch, E.OutputError} <= set(kinds)
    for kind in kinds:
        result = _run(kind("what went wrong", "what to do"))
        assert result.exit_code == kind.exit_code, kind
        assert _one_error_line(result) == "what went wrong — what to do"


def test_generic_line_is_cut_at_300_characters(monkeypatch):
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    text = _one_error_line(_run(ValueError("x" * 1000)))
    assert text == f"ValueError: {'x' * 300} — rerun with REUSE_DEBUG=1 for the traceback"


def test_a_closed_stdout_is_not_an_error(monkeypatch):
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    result = _run(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert result.exit_code == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    "exc", [E.DataError("bad"), KeyboardInterrupt(), OSError(errno.EROFS, "ro")]
)
def test_reuse_debug_shows_the_traceback(exc, monkeypatch):
    """With REUSE_DEBUG=1 the boundary lets the exception (and its traceback) through."""
    monkeypatch.setenv("REUSE_DEBUG", "1")

    @command
    def boom() -> None:
        raise exc

    with pytest.raises(type(exc)):
        boom()


def test_typer_exits_pass_through(monkeypatch):
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    result = _run(typer.Exit(3))
    assert result.exit_code == 3
    assert result.stderr == ""


def test_table_puts_subclasses_before_their_bases():
    kinds = list(errors.ERROR_TABLE)
    for i, kind in enumerate(kinds):
        for later in kinds[i + 1 :]:
            assert not issubclass(later, kind), f"{later.__name__} is shadowed by {kind.__name__}"


def test_extras_named_in_the_table_exist_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for module, extra in errors.EXTRAS.items():
        assert extras.get(extra), f"{module}: no extra [{extra}] in pyproject.toml"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == errors.PACKAGE


def test_read_only_output_folder_through_a_real_command(mlp_path, monkeypatch):
    """`reuse freeze -o` into a read-only folder: the error names the output, not a temp file."""
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    out = mlp_path.parent / "frozen.keras"
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and str(dir) == str(out.parent):
            raise OSError(errno.EROFS, "Read-only file system", f"{dir}/.frozen.abc.part.keras")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = cli(["freeze", mlp_path, "--upto", "hidden2", "-o", out])
    assert result.exit_code == 1
    assert (
        _one_error_line(result) == f"cannot write {out}: read-only file system — choose another -o"
    )
    assert not out.exists()


def test_unwritable_system_folder_through_a_real_command(mlp_path, monkeypatch):
    """A real folder this process may not write (/sys): one line, exit 1, nothing written."""
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError as err:
        refused = err.errno
    else:  # pragma: no cover - a machine where /sys is writable
        import os

        os.close(fd)
        os.unlink(probe)
        pytest.skip("/sys is writable here")
    out = "/sys/frozen.keras"
    result = cli(["freeze", mlp_path, "--upto", "hidden2", "-o", out])
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert out in line and "choose another -o" in line, (refused, line)
