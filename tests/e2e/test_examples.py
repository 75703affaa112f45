"""Each example runs as a real process, as a user would run it, and prints what it promises.

The examples train for real; EPOCHS (read by every example) keeps these runs short. The
published numbers (docs/readme/examples.md) come from runs with the examples' own defaults.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import ROOT, shell

pytestmark = pytest.mark.slow

CHANCE = 1 / 5  # every example learns digits 5-9: five classes
QUICK = {"EPOCHS": "3"}


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _check(result) -> None:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def test_demo_prints_each_step_and_ends_with_the_stage_table_and_test_accuracy(tmp_path):
    result = shell(f"bash examples/demo.sh {tmp_path / 'demo'}", cwd=ROOT, env_extra=QUICK)
    _check(result)
    err = result.stderr
    steps = [
        "$ python -m reuse.data.demo",
        "$ reuse inspect models/digits_0to4.keras",
        "$ reuse freeze models/digits_0to4.keras --upto hidden2",
        "| reuse cache-features --data",
        "--at hidden1,hidden2,hidden3,hidden4",
        "$ reuse finetune",
        "--unfreeze gradual",
        "$ reuse evaluate",
    ]
    positions = [err.find(step) for step in steps]
    assert -1 not in positions, (
        f"missing steps: {[s for s, p in zip(steps, positions, strict=True) if p < 0]}\n{err}"
    )
    assert positions == sorted(positions), "steps printed out of order"
    # The stage table: stage 0 trains the head from the top tap; later stages use lower taps.
    table = err[err.index("stages (") :]
    rows = re.findall(r"│\s+(\d+) │ ([\w ,.]+?)\s+│ (\w+)\s+│\s+(\d+) │", table)
    assert rows and rows[0][:3] == ("0", "head only", "hidden4"), table
    # Two layers per stage (the default --unfreeze-step): hidden4+3 train from hidden2, then
    # hidden4..1 from the raw input.
    assert [r[2] for r in rows] == ["hidden4", "hidden2", "input"][: len(rows)]
    # stdout is not a terminal here, so each step that writes something prints its record.
    records = _records(result.stdout)
    assert [r["command"] for r in records] == ["cache-features", "finetune", "evaluate"]
    assert records[0]["taps"] == ["hidden1", "hidden2", "hidden3", "hidden4"]
    assert records[1]["used_cache"] is True
    evaluation = records[-1]
    assert evaluation["metrics"]["rows"] == 180
    assert evaluation["metrics"]["accuracy"] > CHANCE
    assert result.stdout.rstrip().endswith("}") and "Done in" in err.splitlines()[-1]
    assert (tmp_path / "demo" / "tuned.keras").exists()
    # A quiet terminal: no TensorFlow start-up lines; the commands are the README's.
    assert "absl" not in err and "oneDNN" not in err, err
    readme = (ROOT / "README.md").read_text()
    walk = readme[readme.index("$ make demo") : readme.index("# Done in")]
    shown = [line for line in err.splitlines() if line.startswith(("$ ", "    | "))]
    documented = [
        line for line in walk.splitlines() if line.startswith(("$ reuse", "$ python", "    | "))
    ]
    shown = [
        line.replace(str(tmp_path / "demo"), "demo").replace(" --epochs 3", "") for line in shown
    ]
    assert shown == documented


def test_pipeline_passes_only_records_between_the_commands(tmp_path):
    result = shell(f"bash examples/pipeline.sh {tmp_path / 'work'}", cwd=ROOT, env_extra=QUICK)
    _check(result)
    assert "hidden4" in result.stdout.split("{", 1)[0]  # inspect's layer table comes first
    finetune, evaluate = _records(result.stdout)
    assert finetune["command"] == "finetune" and evaluate["command"] == "evaluate"
    assert finetune["used_cache"] is True  # the cache reached finetune through the pipe
    assert finetune["frozen"] == ["hidden1", "hidden2"]
    assert (
        evaluate["model"] == finetune["model"] == str((tmp_path / "work" / "tuned.keras").resolve())
    )
    assert evaluate["metrics"]["accuracy"] > CHANCE


def test_python_api_prints_the_stages_and_test_accuracy(tmp_path):
    result = shell(f"python examples/python_api.py {tmp_path / 'work'}", cwd=ROOT, env_extra=QUICK)
    _check(result)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "froze hidden1, hidden2; trainable: hidden3, hidden4, output"
    assert lines[1].startswith("cached 537 rows of hidden1, hidden2, hidden3, hidden4")
    assert lines[2].startswith("stage 0: trainable head only")
    accuracy = re.fullmatch(
        r"test accuracy (\d\.\d{4}) on 180 held-out images of digits 5-9", lines[-1]
    )
    assert accuracy and float(accuracy.group(1)) > CHANCE


def test_import_from_pytorch_matches_torch_outputs_then_transfers(tmp_path):
    pytest.importorskip("torch")
    result = shell(
        f"python examples/import_from_pytorch.py {tmp_path / 'work'}", cwd=ROOT, env_extra=QUICK
    )
    _check(result)
    out = result.stdout
    imported = re.search(r"imported: (\{.*\}); check: max \|keras - torch\| = (\S+)", out)
    assert imported, out
    assert "'assigned': 6" in imported.group(1) and "'targets_left_at_init': 0" in imported.group(1)
    assert float(imported.group(2)) < 1e-5
    accuracy = re.search(r"test accuracy (\d\.\d{4}) on 180 held-out images", out)
    assert accuracy and float(accuracy.group(1)) > CHANCE


def test_import_from_pytorch_skips_without_torch(tmp_path):
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is hidden for this test')\n")
    result = shell(
        f"PYTHONPATH={blocker}:$PYTHONPATH python examples/import_from_pytorch.py {tmp_path / 'work'}",
        cwd=ROOT,
    )
    _check(result)
    assert "PyTorch is not installed: skipping" in result.stdout
    assert not (tmp_path / "work").exists()


def test_mnist_transfer_table(mnist_dir, tmp_path):
    result = shell(
        f"bash examples/mnist_transfer.sh {mnist_dir} {tmp_path / 'mnist'}",
        cwd=ROOT,
        env_extra=QUICK,
        timeout=1200,
    )
    _check(result)
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("variant "))
    rows = [line.split() for line in lines[header + 2 :]]
    assert [r[0] for r in rows] == [
        "1-frozen",
        "2-frozen-cached",
        "3-reuse-4-layers",
        "4-unfreeze-top-two",
        "5-gradual",
        "6-from-scratch",
    ]
    for name, acc, train_s, wall_s, _epochs, cache in rows:
        assert CHANCE < float(acc) <= 1, name
        assert 0 < float(train_s) < float(wall_s), name
        assert cache == ("no" if name in ("1-frozen", "6-from-scratch") else "yes"), name
    assert "test: all 4861 t10k images of digits 5-9" in result.stdout
    # The cache changes the speed, not the result: same data, same seed, same head.
    assert rows[0][1] == rows[1][1] and rows[0][4] == rows[1][4]


def test_mnist_transfer_needs_a_folder_of_mnist_files(tmp_path):
    result = shell("bash examples/mnist_transfer.sh /nonexistent", cwd=ROOT)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    result = shell(f"bash examples/mnist_transfer.sh {tmp_path}", cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {tmp_path} holds no MNIST files")
