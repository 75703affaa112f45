"""The "Try it" pipeline of docs/pretrain.md runs as written (with fewer epochs), in a real
shell: `reuse pretrain ... | reuse freeze ... | reuse finetune ... | reuse evaluate`, and the
pairs command, with the feature cache between freeze and finetune."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import ROOT, shell

pytest.importorskip("sklearn")  # the demo digits


def _try_it_block() -> str:
    text = (ROOT / "docs" / "pretrain.md").read_text()
    block = re.search(r"<!-- try-it -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "docs/pretrain.md lost its try-it block"
    return block.group(1)


def test_the_docs_pipeline_runs_and_learns(tmp_path):
    script = re.sub(r"--epochs \d+", "--epochs 3", _try_it_block())
    script = re.sub(r"--pairs \d+", "--pairs 2000", script)
    result = shell("set -eo pipefail\n" + script, tmp_path, timeout=900)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    evaluated = [r for r in records if r["command"] == "evaluate"]
    assert evaluated and evaluated[0]["metrics"]["accuracy"] > 0.3  # 10 digits: chance is 0.1
    assert (tmp_path / "demo" / "ae.keras").exists() and (
        tmp_path / "demo" / "tower.keras"
    ).exists()


def test_pretrain_pipes_into_freeze_cache_features_and_finetune(tmp_path):
    script = (
        "python -m reuse.data.demo demo --classes 0-9 >/dev/null\n"
        "reuse pretrain pairs --data demo/train.npz --layers 16,8 --pairs 500 --epochs 1 --seed 0 "
        "-o demo/tower.keras | reuse freeze --all -o demo/frozen.keras "
        "| reuse cache-features --data demo/train.npz -o demo/feats.h5 "
        "| reuse finetune --data demo/train.npz --epochs 2 -o demo/tuned.keras\n"
    )
    result = shell("set -eo pipefail\n" + script, tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["command"] == "finetune" and record["used_cache"] is True
    assert record["cut"] == "hidden2"  # the whole tower was reused, from its cached top
