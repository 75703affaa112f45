"""docs/cache.md's `reuse inspect feats.h5 --format json` example is what the command prints for
the page's own run (`--at hidden1,hidden3` on 1,000 rows): the chunks follow the default batch
size (256; the page said 64) and the taps are the ones cached (it said hidden2)."""

from __future__ import annotations

import json
import re

from tests.helpers import ROOT, classification_data, cli, mlp, save_npz


def test_cache_page_inspect_example_matches_a_real_cache(tmp_path):
    model = mlp()  # the docs' base.keras: 8 -> 5 x Dense(6, ELU) -> Dense(3, softmax)
    for name in ("hidden1", "hidden2", "hidden3"):
        model.get_layer(name).trainable = False
    model.save(tmp_path / "frozen.keras")
    save_npz(tmp_path / "d.npz", *classification_data(1000))
    cache = tmp_path / "feats.h5"
    made = cli(
        ["cache-features", tmp_path / "frozen.keras", "--data", tmp_path / "d.npz"]
        + ["--at", "hidden1,hidden3", "-o", cache]
    )
    assert made.exit_code == 0, made.stderr
    shown = cli(["inspect", cache, "--format", "json"])
    assert shown.exit_code == 0, shown.stderr
    real = json.loads(shown.stdout)

    page = (ROOT / "docs" / "cache.md").read_text()
    example = page.split("$ reuse inspect feats.h5 --format json\n")[1]
    first_row = json.loads(re.search(r'\{"dataset": [^}]*\}', example).group(0))
    assert first_row == real["rows"][0]
    taps = json.loads(re.search(r'"taps": (\[[^]]*\])', example).group(1))
    assert taps == real["info"]["taps"]
    assert '"kind": "cache"' in example and real["kind"] == "cache"
