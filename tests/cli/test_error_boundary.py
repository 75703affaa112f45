"""The CLI error boundary: every row of reuse.cli.errors.ERROR_TABLE gives one `Error:` line on
stderr, its exit code, and no traceback."""

from __future__ import annotations

import errno
import pickle
import tempfile
import tomllib
import zipfile

import pytest
import typer

from reuse.cli import errors
from reuse.cli.common import command
from reuse.core import errors as E
from tests.helpers import ROOT, cli


def _run(exc: BaseException):
    """Invoke a one-command app whose command raises `exc` inside the boundary."""

    def body():
        raise exc

    return _run_callable(body)


def _run_callable(body):
    """Invoke a one-command app whose command runs `body()` inside the boundary."""
    from typer.testing import CliRunner

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    @command
    def boom() -> None:
        body()

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


def _tf_error(name: str, message: str) -> Exception:
    """An instance of a class shaped like tf.errors.<name> (an OpError subclass from a
    `tensorflow` module), without importing TensorFlow."""
    op_error = type(
        "OpError", (Exception,), {"__module__": "tensorflow.python.framework.errors_impl"}
    )
    kind = type(name, (op_error,), {"__module__": "tensorflow.python.framework.errors_impl"})
    return kind(message)


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
    (
        OSError(errno.EIO, "Input/output error", "/dev/x"),
        1,
        "input/output error on /dev/x (the disk or network file system failed) — check the device (dmesg), or copy the file elsewhere",
    ),
    (
        IsADirectoryError(errno.EISDIR, "Is a directory", "/data"),
        1,
        "/data is a folder, not a file — give the path of a file",
    ),
    (
        NotADirectoryError(errno.ENOTDIR, "Not a directory", "/a.txt/b"),
        1,
        "/a.txt/b: a part of this path is a file, not a folder — check the path",
    ),
    (
        # h5py's RuntimeError on a full disk while writing a cache
        RuntimeError(
            "Can't decrement id ref count (file write failed: time = Mon Nov 30, "
            "filename = '/full/.f.part.h5', file descriptor = 5, errno = 28, "
            "error message = 'No space left on device', buf = 0x1, total write size = 4)"
        ),
        1,
        "cannot write /full/.f.part.h5: no space left on the device — free some space, or choose another -o on another disk",
    ),
    (
        UnicodeDecodeError("utf-8", b"\xff\xfe", 0, 1, "invalid start byte"),
        1,
        "cannot read a file: it is not UTF-8 text (byte 0xff at position 0) — save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)",
    ),
    (
        EOFError("No data left in file"),
        1,
        "cannot read a file: the file is empty or ends early — check that it was written completely",
    ),
    (
        pickle.UnpicklingError("invalid load key, 'x'."),
        1,
        "cannot read a file: it holds pickled Python objects, which reuse never loads (loading them can run code) — save plain numeric arrays, e.g. np.save(path, x.astype('float32'))",
    ),
    (
        zipfile.BadZipFile("File is not a zip file"),
        1,
        "cannot read a file: it is not a zip archive (truncated, or another format) — check that the file is complete",
    ),
    (
        _tf_error("ResourceExhaustedError", "OOM when allocating tensor with shape[4096,4096]"),
        1,
        "out of memory — use a smaller --batch-size or --limit",
    ),
    (
        _tf_error(
            "InvalidArgumentError",
            "Graph execution error:\n\nReceived a label value of 7 which is outside the valid range of [0, 3).  Label values: 7 1",
        ),
        1,
        "a label value of 7 is outside the model's 3 classes (0..2) — check the labels (--classes), or give the head as many outputs as there are classes",
    ),
    (
        _tf_error("NotFoundError", "\n  /x/op.so: cannot open shared object file"),
        1,
        "TensorFlow stopped (NotFoundError): /x/op.so: cannot open shared object file — check that the data fits the model (shape, dtype, label values); REUSE_DEBUG=1 shows where",
    ),
    # Unknown cases keep the generic line.
    (
        ModuleNotFoundError("No module named 'nothere'", name="nothere"),
        1,
        "ModuleNotFoundError: No module named 'nothere' — rerun with REUSE_DEBUG=1 for the traceback",
    ),
    (
        OSError(errno.EXDEV, "Invalid cross-device link", "/dev/x"),
        1,
        "OSError: [Errno 18] Invalid cross-device link: '/dev/x' — rerun with REUSE_DEBUG=1 for the traceback",
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
    ("exc", "code"),
    [(E.DataError("bad"), 1), (KeyboardInterrupt(), 130), (OSError(errno.EROFS, "ro"), 1)],
)
def test_reuse_debug_shows_the_traceback(exc, code, monkeypatch):
    """With REUSE_DEBUG=1 the boundary prints the traceback, then the same Error line and
    exit code as without it."""
    monkeypatch.setenv("REUSE_DEBUG", "1")
    result = _run(exc)
    assert result.exit_code == code
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert sum(line.startswith("Error: ") for line in result.stderr.splitlines()) == 1


def test_an_interrupt_turned_into_another_error_still_reads_interrupted(monkeypatch):
    """Keras can re-raise a KeyboardInterrupt as "ValueError: in user code": still exit 130."""
    monkeypatch.delenv("REUSE_DEBUG", raising=False)
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("in user code: ...")  # noqa: B904 - the context is the point
    except ValueError as err:
        wrapped = err
    result = _run(wrapped)
    assert result.exit_code == 130
    assert _one_error_line(result) == "interrupted — nothing was written; run the command again"


def test_a_sigint_noted_by_the_boundary_reads_interrupted(monkeypatch):
    """A SIGINT whose KeyboardInterrupt was swallowed and replaced (no chain) is still named."""
    import os
    import signal
    import time

    monkeypatch.delenv("REUSE_DEBUG", raising=False)

    class Swallowed(Exception):
        pass

    def boom():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler interrupts the sleep
        except KeyboardInterrupt:
            pass
        raise Swallowed("Graph execution error")

    result = _run_callable(boom)
    assert result.exit_code == 130
    assert _one_error_line(result) == "interrupted — nothing was written; run the command again"


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
    from reuse.core import extras as optional

    for module, extra in optional.EXTRAS.items():
        assert extras.get(extra), f"{module}: no extra [{extra}] in pyproject.toml"
    assert (
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == optional.PACKAGE
    )


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
