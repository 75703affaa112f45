"""`make bench`: run every bench/bench_*.py, print one table, write bench.json.

Each bench module has `run() -> list[dict]`; a row holds `name`, `value`, `unit` and, where
the figure is a comparison measured in the same run, `ratio` and `target`. A module that needs
data that is absent (MNIST) returns rows with `skipped` set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main(argv: list[str]) -> int:
    only = set(argv)
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        started = time.perf_counter()
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        for row in module.run():
            row.setdefault("bench", name)
            rows.append(row)
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    out = {"machine": machine(), "rows": rows}
    (ROOT / "bench.json").write_text(json.dumps(out, indent=2) + "\n")
    width = max((len(r["name"]) for r in rows), default=10)
    print(f"{'benchmark'.ljust(width)}  {'value':>12}  unit      ratio    target")
    for r in rows:
        if r.get("skipped"):
            print(f"{r['name'].ljust(width)}  skipped: {r['skipped']}")
            continue
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else ""
        print(
            f"{r['name'].ljust(width)}  {r['value']:>12.4g}  {r.get('unit', ''):8}  {ratio:>7}  {r.get('target', '')}"
        )
    print(f"wrote {ROOT / 'bench.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
