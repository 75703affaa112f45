"""What the feature cache's integrity checks cost: HDF5's per-chunk fletcher32 checksums on
write and read, and the CRC-32 digest of each feature dataset (written once, checked when a
whole tap is loaded: `reuse.cache.layout.digest`).

The data are 60,000 rows of 300 float32 features (72 MB, the MNIST MLP tap of
bench_cache.py), random, chunked by 256 rows as `cache-features` writes them. Times are the
best of 3, in one run, so the ratios compare like with like.

    python bench/run.py cache_checksums
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROWS, WIDTH, CHUNK = 60_000, 300, 256


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run() -> list[dict]:
    import h5py

    from reuse.cache.layout import digest

    x = np.random.default_rng(0).normal(size=(ROWS, WIDTH)).astype("float32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for checked in (False, "fletcher32", True):
            path = Path(tmp) / f"c{checked}.h5"

            def write(path=path, checked=checked):
                with h5py.File(path, "w") as f:
                    ds = f.create_dataset(
                        "t",
                        shape=x.shape,
                        dtype="float32",
                        chunks=(CHUNK, WIDTH),
                        fletcher32=bool(checked),
                    )
                    for s in range(0, ROWS, CHUNK):
                        ds[s : s + CHUNK] = x[s : s + CHUNK]
                    if checked is True:
                        ds.attrs["crc32"] = np.uint32(digest(ds))

            def read(path=path, checked=checked):
                with h5py.File(path, "r") as f:
                    values = f["t"][...]
                    if checked is True:
                        assert digest(values) == int(f["t"].attrs["crc32"])

            times[checked] = (_best(write), _best(read))
        for i, what in enumerate(("write", "read whole tap")):
            plain = times[False][i]
            for kind, label in (("fletcher32", "fletcher32"), (True, "fletcher32 + crc32")):
                rows.append(
                    {
                        "name": f"cache checksums: {what}, {label} vs none (72 MB)",
                        "value": round(times[kind][i], 3),
                        "unit": "s",
                        "ratio": round(times[kind][i] / plain, 2),
                        "plain_s": round(plain, 3),
                    }
                )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
