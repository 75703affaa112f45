"""Other Keras backends: training commands refuse at start with one Error line naming the
supported backend; inspect, freeze, evaluate and predict work on .keras files under torch and jax."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import classification_data, mlp, save_npz, shell

TRAINING = [
    "lora merge",
    "finetune",
    "cache-features",
    "lr-find",
    "check",
    "sparsify",
    "import-weights",
    "quantize",
]


@pytest.mark.parametrize(
    ("backend", "command"), [("torch", c) for c in TRAINING] + [("jax", "finetune")]
)
def test_training_commands_refuse_other_backends(tmp_path, backend, command):
    result = shell(
        f"python -X importtime -m reuse {command} missing.keras"
        + (" missing.npz" if command == "lora merge" else ""),
        tmp_path,
        env_extra={"KERAS_BACKEND": backend},
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert f"KERAS_BACKEND is {backend}" in errors[0]
    assert "tensorflow" in errors[0]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"tensorflow", "keras", "torch"}, "refused before loading anything"


def test_keras_json_backend_is_read(tmp_path):
    (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    result = shell(
        "python -m reuse finetune m.keras", tmp_path, env_extra={"KERAS_HOME": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "KERAS_BACKEND is jax" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_read_only_commands_work_on_other_backends(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed")
    model = mlp(n_in=8, hidden=3, units=6, n_out=3, seed=0)
    model.save(tmp_path / "base.keras")
    x, y = classification_data(n=30, n_in=8, n_classes=3)
    save_npz(tmp_path / "d.npz", x, y)
    other = {"KERAS_BACKEND": backend}
    lines = [
        "reuse inspect base.keras -f json",
        "reuse freeze base.keras --upto hidden2 -o frozen.keras --json",
        "reuse evaluate frozen.keras --data d.npz --json",
        "reuse predict frozen.keras --data d.npz -o p.npy --json",
        "python -c 'import keras; print(keras.backend.backend())'",
    ]
    result = shell(" && ".join(lines), tmp_path, env_extra=other)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == backend
    assert '"command": "evaluate"' in result.stdout
    assert (tmp_path / "p.npy").exists() and (tmp_path / "frozen.keras").exists()
