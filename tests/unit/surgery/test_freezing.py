"""`reuse freeze` / `reuse unfreeze` and `reuse.surgery.freezing`: selectors, flags, records, pipes."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reuse.core.errors import LayerNotFound, SelectionError, UsageError
from tests.helpers import (
    ROOT,
    classification_data,
    cli,
    last_record,
    mlp,
    nested_application,
    residual,
    reuse_exe,
    shell,
)

MLP_NAMES = ["hidden1", "hidden2", "hidden3", "hidden4", "hidden5", "output"]
BASE = "mobilenetv2_0.35_32"


def flags(model) -> dict[str, bool]:
    """Leaf path -> whether it trains, for leaves with weights (container flags included)."""
    from reuse.surgery.freezing import frozen_layers
    from reuse.surgery.layer_tree import leaves, weight_count

    frozen = set(frozen_layers(model))
    return {e.path: e.path not in frozen for e in leaves(model) if weight_count(e.layer)}


def frozen_of(model) -> list[str]:
    return [name for name, trains in flags(model).items() if not trains]


# --- selectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"upto": "hidden2"}, ["hidden1", "hidden2"]),
        ({"from_": "hidden2", "to": "hidden4"}, ["hidden2", "hidden3", "hidden4"]),
        ({"from_": "hidden5"}, ["hidden5", "output"]),
        ({"to": "hidden1"}, ["hidden1"]),
        ({"layers": "hidden[13]"}, ["hidden1", "hidden3"]),
        ({"layers": "hidden.*"}, MLP_NAMES[:5]),
        ({"index": "1:3"}, ["hidden2", "hidden3"]),
        ({"index": ":-2"}, MLP_NAMES[:4]),
        ({"index": "-2:"}, ["hidden5", "output"]),
        ({"index": "4"}, ["hidden5"]),
        ({"index": "-1"}, ["output"]),
        ({"index": "::2"}, ["hidden1", "hidden3", "hidden5"]),
        ({"all": True}, MLP_NAMES),
        ({"except_top": 1}, MLP_NAMES[:5]),
        ({"except_top": 0}, MLP_NAMES),
    ],
)
def test_select_each_kind(kwargs, expected):
    from reuse.surgery.freezing import select

    assert [e.path for e in select(mlp(), **kwargs)] == expected


def test_freeze_sets_exactly_the_selection_and_reports_it():
    from reuse import freeze
    from reuse.surgery.layer_tree import weight_count

    model = mlp()
    change = freeze(model, upto="hidden2")
    assert frozen_of(model) == ["hidden1", "hidden2"]
    assert change.frozen_now == ["hidden1", "hidden2"] and change.unfrozen_now == []
    sizes = {name: weight_count(model.get_layer(name)) for name in MLP_NAMES}
    assert change.params_frozen == sizes["hidden1"] + sizes["hidden2"]
    assert change.trainable == {n: sizes[n] for n in MLP_NAMES[2:]}
    assert change.frozen_params + change.trainable_params == model.count_params()
    assert len(model.trainable_weights) == 2 * 4 and change.cut == "hidden2"
    assert not change.all_frozen


def test_freeze_adds_unfreeze_removes_only_replaces():
    from reuse import freeze, unfreeze

    model = mlp()
    freeze(model, upto="hidden2")
    freeze(model, layers="hidden4")
    assert frozen_of(model) == ["hidden1", "hidden2", "hidden4"]
    change = unfreeze(model, layers="hidden2")
    assert change.unfrozen_now == ["hidden2"] and frozen_of(model) == ["hidden1", "hidden4"]
    assert change.cut == "hidden1"  # the top of the frozen part below the first trainable layer
    freeze(model, layers="hidden3", only=True)
    assert frozen_of(model) == ["hidden3"]
    unfreeze(model, layers="output", only=True)
    assert frozen_of(model) == MLP_NAMES[:5]
    assert freeze(model, all=True).all_frozen


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"upto": "hiden2"}, LayerNotFound, ["no layer named 'hiden2'", "did you mean", "hidden2"]),
        ({"from_": "hidden4", "to": "hidden2"}, SelectionError, ["comes after", "swap"]),
        ({"index": "10:"}, SelectionError, ["selects no layer", "6 layers"]),
        ({"index": "3:1"}, SelectionError, ["selects no layer"]),
        ({"except_top": 6}, SelectionError, ["selects no layer"]),
        ({"layers": "hidden"}, SelectionError, ["fully matches", "--layers 'hidden.*'"]),
        ({"layers": "hiden1"}, SelectionError, ["fully matches", "closest names: hidden1"]),
        ({"layers": "hidden["}, UsageError, ["regular expression", "--layers=hidden["]),
        ({"index": "a:b"}, UsageError, ["Python slice", "--index=a:b"]),
        ({"index": "1:2:0"}, UsageError, ["step"]),
        ({"except_top": -1}, UsageError, ["--except-top=-1"]),
        ({}, UsageError, ["no layers chosen", "--upto"]),
        (
            {"upto": "hidden2", "layers": "x"},
            UsageError,
            ["--upto and --layers cannot be used together"],
        ),
    ],
)
def test_select_errors(kwargs, error, words):
    from reuse.surgery.freezing import select

    with pytest.raises(error) as info:
        select(mlp(), **kwargs)
    for word in words:
        assert word in str(info.value)


# --- real architectures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def transfer_model():
    """The nested application with every layer trainable (the helper freezes the base)."""
    from reuse import unfreeze

    model = nested_application()
    unfreeze(model, all=True)
    return model


def test_nested_regex_freezes_part_of_the_base(transfer_model, tmp_path):
    import keras

    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, layers=f"{BASE}/block_1.*")
    expected = [n for n in flags(model) if n.split("/")[-1].startswith("block_1")]
    assert expected and frozen_of(model) == expected == change.frozen_now
    assert f"{BASE}/block_1_expand" in expected and f"{BASE}/block_10_expand" in expected
    assert model.get_layer(BASE).trainable  # the container stays trainable: the rest trains
    inner = model.get_layer(BASE)
    assert not inner.get_layer("block_1_expand_BN").trainable
    trained = {id(w) for w in model.trainable_weights}
    assert id(inner.get_layer("block_2_expand").kernel) in trained
    assert id(inner.get_layer("block_1_expand").kernel) not in trained
    assert model.count_params() == change.frozen_params + change.trainable_params
    # The flags survive a save and a plain Keras load.
    path = tmp_path / "t.keras"
    model.save(path)
    assert frozen_of(keras.models.load_model(path)) == expected


def test_nested_bare_regex_and_name(transfer_model):
    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    freeze(model, layers="block_[1-3]_.*")  # bare names match inside the nested model too
    assert all(
        n.split("/")[-1][:8] in ("block_1_", "block_2_", "block_3_") for n in frozen_of(model)
    )
    unfreeze(model, all=True)
    freeze(model, layers="Conv1")  # a bare name that is unique
    assert frozen_of(model) == [f"{BASE}/Conv1"]


def test_nested_upto_inner_layer_stops_inside_the_base(transfer_model):
    from reuse import freeze, unfreeze
    from reuse.surgery.layer_tree import find, leaves, walk

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, upto=f"{BASE}/block_2_add")
    top = find(walk(model), f"{BASE}/block_2_add").index
    below = [e.path for e in leaves(model) if e.index <= top]
    assert frozen_of(model) == [n for n in flags(model) if n in below]
    assert flags(model)[f"{BASE}/block_3_expand"] and flags(model)["output"]
    assert model.get_layer(BASE).trainable
    assert change.cut == f"{BASE}/block_2_add"  # weightless, but the top of the frozen part


def test_nested_container_selected_whole_and_inner_unfreeze(transfer_model):
    from reuse import freeze, unfreeze

    model = transfer_model
    unfreeze(model, all=True)
    change = freeze(model, layers=BASE)
    assert change.trainable == {"output": 1280 * 3 + 3}
    assert not model.get_layer(BASE).trainable and len(model.trainable_weights) == 2
    # Unfreezing one inner layer makes the container trainable again, the rest stays frozen.
    change = unfreeze(model, layers=f"{BASE}/block_16_project")
    assert model.get_layer(BASE).trainable
    assert change.unfrozen_now == [f"{BASE}/block_16_project"]
    assert set(change.trainable) == {f"{BASE}/block_16_project", "output"}
    assert len(model.trainable_weights) == 1 + 2


def test_residual_functional_model_freeze_upto_add_and_train(tmp_path):
    import keras

    from reuse import freeze

    model = residual()
    change = freeze(model, upto="add")
    assert change.selected == ["inp", "stem", "branch_a", "branch_b", "add"]
    assert frozen_of(model) == ["stem", "branch_a", "branch_b"] and change.cut == "add"
    path = tmp_path / "r.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert frozen_of(loaded) == ["stem", "branch_a", "branch_b"]
    before = [w.numpy().copy() for w in loaded.get_layer("branch_b").weights]
    top_before = loaded.get_layer("top").kernel.numpy().copy()
    x, y = classification_data(32)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for old, w in zip(before, loaded.get_layer("branch_b").weights, strict=True):
        np.testing.assert_array_equal(old, w.numpy())
    assert not np.array_equal(top_before, loaded.get_layer("top").kernel.numpy())


# --- the command ----------------------------------------------------------------------------


def test_cli_freeze_writes_default_output_and_record(mlp_path):
    import keras

    original = mlp_path.read_bytes()
    result = cli(["freeze", mlp_path, "--upto", "hidden2"])
    assert result.exit_code == 0, result.stderr
    out = mlp_path.parent / "base.frozen.keras"
    record = last_record(result.stdout)
    assert record["command"] == "freeze" and record["model"] == str(out.resolve())
    assert record["frozen"] == ["hidden1", "hidden2"] and record["cut"] == "hidden2"
    assert record["trainable"] == MLP_NAMES[2:]
    assert mlp_path.read_bytes() == original  # the input is never modified
    assert frozen_of(keras.models.load_model(out)) == ["hidden1", "hidden2"]
    assert "Froze 2 layers" in result.stderr  # the summary goes to stderr when stdout is a pipe


def test_cli_unfreeze_default_output_and_explicit_o(mlp_path, tmp_path):
    import keras

    frozen = tmp_path / "f.keras"
    assert cli(["freeze", mlp_path, "--all", "-o", frozen]).exit_code == 0
    result = cli(["unfreeze", frozen, "--index", "-2:"])
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "f.unfrozen.keras"
    assert last_record(result.stdout)["model"] == str(out.resolve())
    assert frozen_of(keras.models.load_model(out)) == MLP_NAMES[:4]
    assert last_record(result.stdout)["cut"] == "hidden4"


def test_cli_output_equal_to_input_refused_unless_in_place(mlp_path):
    import keras

    original = mlp_path.read_bytes()
    result = cli(["freeze", mlp_path, "--upto", "hidden1", "-o", mlp_path])
    assert result.exit_code == 1
    assert "Error: output" in result.stderr and "--in-place" in result.stderr
    assert mlp_path.read_bytes() == original
    result = cli(
        ["freeze", mlp_path, "--upto", "hidden1", "-o", mlp_path.parent / "x.keras", "--in-place"]
    )
    assert result.exit_code == 2 and "--in-place" in result.stderr
    result = cli(["freeze", mlp_path, "--upto", "hidden1", "--in-place"])
    assert result.exit_code == 0, result.stderr
    assert last_record(result.stdout)["model"] == str(mlp_path.resolve())
    assert frozen_of(keras.models.load_model(mlp_path)) == ["hidden1"]


def test_cli_freezing_everything_warns(mlp_path):
    result = cli(["freeze", mlp_path, "--all"])
    assert result.exit_code == 0
    assert "Warning: every layer of the model is frozen" in result.stderr
    assert last_record(result.stdout)["trainable"] == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--upto", "hiden2"], 1, ["Error: no layer named 'hiden2'", "did you mean: hidden2"]),
        (["--from", "hidden4", "--to", "hidden2"], 1, ["Error: --from hidden4", "comes after"]),
        (["--index", "7:"], 1, ["Error: --index 7: selects no layer"]),
        ([], 2, ["Error: no layers chosen"]),
        (["--upto", "hidden2", "--all"], 2, ["Error: --upto and --all cannot be used together"]),
        (["--all", "-o", "out.txt"], 1, ["Error: cannot save a model as 'out.txt'"]),
    ],
)
def test_cli_errors(mlp_path, args, code, words):
    result = cli(["freeze", mlp_path, *args])
    assert result.exit_code == code
    for word in words:
        assert word in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert not (mlp_path.parent / "base.frozen.keras").exists()


def test_frozen_batchnorm_and_dense_unchanged_by_training(tmp_path):
    import keras

    base = tmp_path / "bn.keras"
    mlp(bn=True).save(base)
    out = tmp_path / "bn.frozen.keras"
    result = cli(["freeze", base, "--layers", "hidden1|bn1", "-o", out])
    assert result.exit_code == 0, result.stderr
    x, y = classification_data(48)
    x = x * 3.0 + 1.0  # statistics far from BN's initial moving mean 0 / variance 1

    def train(model):
        bn = model.get_layer("bn1")
        before = {
            w.path: w.numpy().copy() for w in [*bn.weights, *model.get_layer("hidden1").weights]
        }
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        after = {w.path: w.numpy() for w in [*bn.weights, *model.get_layer("hidden1").weights]}
        return before, after

    frozen = keras.models.load_model(out)
    hidden2 = frozen.get_layer("hidden2").kernel.numpy().copy()
    before, after = train(frozen)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert not np.array_equal(hidden2, frozen.get_layer("hidden2").kernel.numpy())
    # Control: the same training moves the statistics of a trainable BN.
    before, after = train(keras.models.load_model(base))
    mean = next(k for k in before if k.endswith("moving_mean"))
    assert not np.array_equal(before[mean], after[mean])


# --- real shell pipes -----------------------------------------------------------------------


def test_shell_freeze_pipe_to_inspect(mlp_path):
    original = mlp_path.read_bytes()
    proc = shell(
        "reuse freeze base.keras --upto hidden2 | reuse inspect --format json", cwd=mlp_path.parent
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert {r["name"]: r["trainable"] for r in rows} == {
        "hidden1": False,
        "hidden2": False,
        "hidden3": True,
        "hidden4": True,
        "hidden5": True,
        "output": True,
    }
    assert json.loads(proc.stdout)["path"].endswith("base.frozen.keras")
    assert mlp_path.read_bytes() == original


def test_shell_record_file_on_stdin_keeps_passthrough_fields(mlp_path):
    record = {
        "reuse": "0.1.0",
        "command": "cache-features",
        "model": str(mlp_path),
        "data": "/data/train.npz",
        "features": "/old/feats.h5",
        "cut": "hidden5",
    }
    (mlp_path.parent / "record.json").write_text(json.dumps(record) + "\n")
    proc = shell("reuse freeze --upto hidden2 < record.json", cwd=mlp_path.parent)
    assert proc.returncode == 0, proc.stderr
    out = last_record(proc.stdout)
    assert out["model"] == str((mlp_path.parent / "base.frozen.keras").resolve())
    assert out["data"] == "/data/train.npz"  # not about the model: passes through
    assert "features" not in out and out["cut"] == "hidden2"  # about the old model: replaced


def test_shell_chain_reads_the_record_of_a_previous_command(mlp_path):
    proc = shell(
        "reuse freeze base.keras --upto hidden1 -o a.keras "
        "| reuse freeze --layers hidden3 | reuse inspect --format json",
        cwd=mlp_path.parent,
    )
    assert proc.returncode == 0, proc.stderr
    frozen = [r["name"] for r in json.loads(proc.stdout)["rows"] if not r["trainable"]]
    assert frozen == ["hidden1", "hidden3"]  # the second step adds to what the first froze
    assert (mlp_path.parent / "a.frozen.keras").exists()  # the default name next to a.keras


def run_on_tty(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run `reuse ARGS` with stdout on a pseudo-terminal; stderr is captured apart."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="120")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*shlex.split(reuse_exe()), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_tty_json_flag_prints_record_and_plain_tty_prints_human_view(mlp_path):
    code, out, err = run_on_tty(
        ["freeze", "base.keras", "--upto", "hidden2", "--json"], mlp_path.parent
    )
    assert code == 0, err
    record = last_record(out)
    assert record["frozen"] == ["hidden1", "hidden2"] and record["command"] == "freeze"
    code, out, err = run_on_tty(
        ["freeze", "base.keras", "--upto", "hidden2", "-o", "h.keras"], mlp_path.parent
    )
    assert code == 0, err
    assert "Froze 2 layers" in out and "Trainable now" in out and "hidden3" in out
    assert "Wrote h.keras" in out and '"command"' not in out


def test_unfreeze_inside_a_model_whose_own_flag_is_false():
    from reuse import unfreeze

    model = mlp()
    model.trainable = False  # how people often freeze a whole base
    assert frozen_of(model) == MLP_NAMES
    change = unfreeze(model, layers="output")
    assert change.unfrozen_now == ["output"] and frozen_of(model) == MLP_NAMES[:5]
    assert len(model.trainable_weights) == 2 and change.cut == "hidden5"
