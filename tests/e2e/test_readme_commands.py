"""The README's per-command examples and its pipeline run as written, after the demo.

The README says they run from the repository's root once `make demo` has written `demo/`;
here the demo writes into a temporary folder that holds a link to `models/`, and the README's
blocks run there, quietly (no TensorFlow log lines on stderr).
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, shell

pytestmark = pytest.mark.slow


def _block_after(text: str, heading: str) -> str:
    start = text.index(heading)
    return re.search(r"```\n(.*?)```", text[start:], re.S).group(1)


def test_readme_examples_run_after_the_demo(tmp_path):
    pytest.importorskip("matplotlib")  # `reuse plot` is one of the examples
    (tmp_path / "models").symlink_to(ROOT / "models")
    demo = shell(f"bash examples/demo.sh {tmp_path / 'demo'}", ROOT, env_extra={"EPOCHS": "2"})
    assert demo.returncode == 0, demo.stderr
    readme = (ROOT / "README.md").read_text()
    for heading in ("## One example per command", "In a pipeline, only the"):
        block = _block_after(readme, heading)
        result = shell("set -euo pipefail\n" + block, tmp_path, timeout=1200)
        assert result.returncode == 0, (
            f"{block}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        assert "absl" not in result.stderr and "oneDNN" not in result.stderr, result.stderr
    for name in (
        "f3.keras",
        "u3.keras",
        "nesterov.keras",
        "preds.csv",
        "curves.png",
        "sparse.keras",
    ):
        assert (tmp_path / "demo" / name).exists(), name
    assert (tmp_path / "demo" / "p.tuned.keras").exists()


def test_doc_files_make_what_the_docs_name(tmp_path):
    """examples/doc_files.py writes the files the docs use, with the layers the docs show."""
    made = shell(f"python examples/doc_files.py {tmp_path}", ROOT, timeout=600)
    assert made.returncode == 0, made.stderr
    assert "absl" not in made.stderr and "oneDNN" not in made.stderr, made.stderr
    names = ["base.keras", "model.keras", "train.npz", "valid.npz", "test.npz", "d.npz", "x.npy"]
    names += ["y.npy", "table.csv", "convnet.keras", "resnet.keras", "broken.keras"]
    for name in [*names, "transfer.keras", "photos/cat"]:
        assert (tmp_path / name).exists(), name
    for model, total in (("base.keras", "243"), ("convnet.keras", "379")):
        shown = shell(f"reuse inspect {model}", tmp_path)
        assert f"Total params: {total}" in shown.stdout, shown.stdout
    csv = shell("reuse inspect transfer.keras --format csv", tmp_path).stdout.splitlines()
    assert csv[1].startswith(",mobilenetv2_0.35_32,Functional,Nonex1x1x1280,410208,False")
