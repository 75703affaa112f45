"""Tiny models and data for tests, and ways to run the CLI (in-process and as a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def mlp(
    n_in: int = 8, hidden: int = 5, units: int = 6, n_out: int = 3, seed: int = 0, bn: bool = False
):
    """A Sequential MLP: hidden1..hiddenN (ELU), optional BatchNormalization, output softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((n_in,), name="features")]
    for i in range(1, hidden + 1):
        layers.append(keras.layers.Dense(units, activation="elu", name=f"hidden{i}"))
        if bn and i == 1:
            layers.append(keras.layers.BatchNormalization(name="bn1"))
    layers.append(keras.layers.Dense(n_out, activation="softmax", name="output"))
    return keras.Sequential(layers, name="mlp")


MLP_NAMES = ["hidden1", "hidden2", "hidden3", "hidden4", "hidden5", "output"]  # the layers of mlp()


def frozen_mlp(upto: int = 3, **kw):
    """mlp(**kw) with its first `upto` layers frozen."""
    model = mlp(**kw)
    for layer in model.layers[:upto]:
        layer.trainable = False
    return model


def flags(model) -> dict[str, bool]:
    """Leaf path -> whether it trains, for leaves with weights (container flags included)."""
    from reuse.surgery.freezing import frozen_layers
    from reuse.surgery.layer_tree import leaves, weight_count

    frozen = set(frozen_layers(model))
    return {e.path: e.path not in frozen for e in leaves(model) if weight_count(e.layer)}


def frozen_of(model) -> list[str]:
    """The paths of the frozen leaves with weights, in model order."""
    return [name for name, trains in flags(model).items() if not trains]


def copy_weights(model) -> list[np.ndarray]:
    """A copy of every weight array of `model`, in get_weights() order."""
    return [np.array(w, copy=True) for w in model.get_weights()]


def residual(n_in: int = 8, seed: int = 0):
    """A functional model with a skip connection from `stem` to `add`."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((n_in,), name="inp")
    stem = keras.layers.Dense(6, activation="relu", name="stem")(inp)
    a = keras.layers.Dense(6, activation="relu", name="branch_a")(stem)
    b = keras.layers.Dense(6, name="branch_b")(a)
    add = keras.layers.Add(name="add")([stem, b])
    top = keras.layers.Dense(4, activation="relu", name="top")(add)
    out = keras.layers.Dense(3, activation="softmax", name="output")(top)
    return keras.Model(inp, out, name="resnet_tiny")


def convnet(seed: int = 0, size: int = 12, channels: int = 1, n_out: int = 3):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, channels), name="image"),
            keras.layers.Conv2D(4, 3, activation="relu", padding="same", name="conv1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ],
        name="convnet",
    )


def nested_application(seed: int = 0):
    """The standard transfer pattern: a keras.applications base inside a Sequential."""
    import keras

    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35
    )
    base.trainable = False
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ],
        name="transfer",
    )


def classification_data(n: int = 60, n_in: int = 8, n_classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    centers = rng.normal(0, 2, size=(n_classes, n_in))
    x = (centers[y] + rng.normal(0, 0.5, size=(n, n_in))).astype("float32")
    return x, y.astype("int64")


def save_npz(path: Path, x, y) -> Path:
    np.savez(path, x=x, y=y)
    return path


def cli(args: list[str], input: str | None = None):
    """Run `reuse ARGS` in-process with Typer's CliRunner; stdout and stderr kept apart."""
    from typer.testing import CliRunner

    from reuse.cli import app, normalize_argv

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 keeps them apart already
        runner = CliRunner()
    return runner.invoke(
        app, normalize_argv([str(a) for a in args]), input=input, catch_exceptions=False
    )


def reuse_exe() -> str:
    """The installed console script, next to the running Python."""
    exe = Path(sys.executable).parent / "reuse"
    return str(exe) if exe.exists() else f"{sys.executable} -m reuse"


def shell(
    command: str,
    cwd: Path,
    stdin: str | None = None,
    env_extra: dict | None = None,
    timeout: int = 300,
):
    """Run a shell command line where `reuse` is the real console script of this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.update(env_extra or {})
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        executable="/bin/bash",
    )


def last_record(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def png_ok(path: Path, min_bytes: int = 5_000) -> None:
    """Assert that `path` is a real PNG image over `min_bytes`, larger than 100x100 pixels."""
    import matplotlib.image

    assert path.exists() and path.stat().st_size > min_bytes
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def cli_fresh_process(cases: list[list]) -> tuple[list[tuple[int, str]], bool]:
    """Run each `reuse ARGS` of `cases` in-process in one fresh Python process: each case's
    (exit code, output), and whether TensorFlow was imported by any of them."""
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from reuse.cli import app, normalize_argv\n"
        "out = []\n"
        "for a in json.loads(sys.argv[1]):\n"
        "    r = CliRunner().invoke(app, normalize_argv(a))\n"
        "    out.append([r.exit_code, r.output])\n"
        "print(json.dumps([out, 'tensorflow' in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([[str(a) for a in c] for c in cases])],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    results, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return [tuple(r) for r in results], tf_loaded


def subprocess_env(**extra: str) -> dict:
    """The environment for a `python -m reuse` child process: this checkout on PYTHONPATH,
    TensorFlow's C++ logging quiet, plus `extra` (e.g. REUSE_TEST_EPOCH_DELAY="1.5")."""
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **extra)


def kill_when(args: list, state_file: Path, ready, *, cwd=None, env=None, timeout: float = 240):
    """Start `args`, wait until its checkpoint `state_file` (state.json) satisfies
    `ready(state)`, SIGKILL it, and return that state as read after the kill.

    Fails the test if the process ends (or `timeout` seconds pass) before `ready` holds; the
    process's stderr tail is the message."""
    import signal
    import time

    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                if ready(json.loads(Path(state_file).read_text())):
                    break
            except (OSError, json.JSONDecodeError):
                pass
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return json.loads(Path(state_file).read_text())


def saved_weights(path) -> list[np.ndarray]:
    """The weights of the Keras model file at `path`."""
    import keras

    return keras.models.load_model(path).get_weights()


def assert_weights_close(a: list, b: list, atol: float) -> None:
    """Two weight lists of the same length, equal within `atol` (absolute and relative)."""
    assert len(a) == len(b)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_allclose(wa, wb, atol=atol, rtol=atol)


def assert_features_equal(a, b) -> None:
    """Features of the same rows computed in batches of different sizes (a shard against the
    whole data): equal up to float32 rounding. On some CPUs (seen on AVX2, not on AVX-512) the
    matrix kernels sum in another order when the batch has another number of rows, and the last
    bit of a few values differs (at most 5e-7 seen on features of magnitude 1-10)."""
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def wait_for_part_rows(proc, part: Path, at_least: int, timeout: float = 120) -> int:
    """Poll a running `cache-features` (`proc`) until its `.part.h5` records `at_least` rows
    done, it ends, or `timeout` seconds pass; the rows done last seen (0: none yet)."""
    import time

    import h5py

    done, deadline = 0, time.time() + timeout
    while time.time() < deadline and done < at_least and proc.poll() is None:
        time.sleep(0.1)
        if part.exists():
            try:
                with h5py.File(part, "r", locking=False) as f:
                    done = int(f.attrs.get("rows_done", 0))
            except (OSError, KeyError):
                pass
    return done
