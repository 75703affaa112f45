"""A feature cache made in shards, and the parts joined into one cache without a copy.

`cache_features(..., shard=(i, n))` writes shard i of n: the contiguous rows
`shard_range(rows, i, n)` of the data, into a part file (`shard_file`) that is a complete
cache of those rows plus the attributes `shard` ("i/n"), `shard_start`, `shard_stop` and
`total_rows`; its fingerprint and data identity are those of the whole cache. Each part is
made on its own (a Slurm array task, a Ray actor, a process) and resumes on its own.

`merge_parts(parts, output)` checks the parts by the same rules `open_cache` applies (same
fingerprint, taps, data, settings; every shard once; their rows contiguous) and writes
`output` as an HDF5 file of virtual datasets (h5py VDS) that map each part's rows into place:
no feature is copied, and training reads the joined file like any cache. The part files
must stay where they are, named as they were (relative to the joined file); `open_cache`
refuses a joined cache whose parts are missing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from reuse.cache.layout import (
    DIGEST_ATTR,
    INPUT_VIEWS_DATASET,
    SETTINGS_ATTRS,
    attr_value,
    part_path,
)
from reuse.core.errors import CacheIncomplete, CacheMismatch, UsageError
from reuse.formats.paths import hdf5_reason

SHARD_ATTRS = ("shard", "shard_start", "shard_stop", "total_rows")
# Root attributes that must agree between the parts of one cache.
_SAME = (*SETTINGS_ATTRS, "tap_shapes", "tap_dtypes", "class_map", "total_rows")


def parse_shard(spec: str) -> tuple[int, int]:
    """`"I/N"` -> (I, N), with 0 <= I < N.

    Raises:
        UsageError: not of the form I/N, or I outside 0..N-1.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise UsageError(
            f"--shard takes I/N with 0 <= I < N. Received: --shard {spec}",
            "e.g. --shard 0/4 ... --shard 3/4 (on Slurm: --shard $SLURM_ARRAY_TASK_ID/4)",
        )
    return int(match[1]), int(match[2])


def shard_range(rows: int, index: int, count: int) -> tuple[int, int]:
    """The rows [start, stop) of shard `index` of `count`: contiguous, sizes differ by <= 1."""
    return index * rows // count, (index + 1) * rows // count


def shard_file(output: str | os.PathLike, index: int, count: int) -> Path:
    """The part file of shard `index` of `count` of the cache `output`:
    `<stem>.part-00002-of-00008.h5` beside it."""
    out = Path(output)
    width = max(5, len(str(count)))
    return out.with_name(
        f"{out.stem}.part-{index:0{width}d}-of-{count:0{width}d}{out.suffix or '.h5'}"
    )


def shard_attrs(index: int, count: int, start: int, stop: int, total: int) -> dict:
    """The root attributes that mark a file as shard `index` of `count`."""
    return {
        "shard": f"{index}/{count}",
        "shard_start": start,
        "shard_stop": stop,
        "total_rows": total,
    }


def part_is_done(path: str | os.PathLike, expected: dict) -> bool:
    """Whether `path` is a complete part with the attributes in `expected` (as written):
    what `--resume` skips. A part made with other settings is not done."""
    import h5py

    if not Path(path).exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            if not bool(f.attrs.get("complete", False)):
                return False
            return all(attr_value(f.attrs.get(k)) == attr_value(v) for k, v in expected.items())
    except OSError:
        return False


def _read_part(path: Path) -> dict:
    import h5py

    if not path.exists():
        unfinished = part_path(path)
        raise CacheIncomplete(
            f"{path}: no such part"
            + (f" (its unfinished rows are in {unfinished.name})" if unfinished.exists() else ""),
            "make the missing shards first (cache-features --shard I/N [--resume])",
        )
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
            sets = {}
            f.visititems(
                lambda name, obj: (
                    sets.__setitem__(
                        name,
                        (obj.shape, obj.dtype, {k: attr_value(v) for k, v in obj.attrs.items()}),
                    )
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    except OSError as err:
        raise CacheMismatch(
            f"{path} is not a readable HDF5 file ({hdf5_reason(err)})",
            "make that shard again",
        ) from None
    if "shard" not in attrs:
        raise CacheMismatch(
            f"{path} is not a shard of a cache (no shard attribute)",
            "merge the parts written by cache-features --shard I/N",
        )
    if not attrs.get("complete"):
        raise CacheIncomplete(
            f"{path} (shard {attrs['shard']}) is incomplete",
            "finish it with the same cache-features --shard command and --resume",
        )
    return {"path": path, "attrs": attrs, "sets": sets}


def merge_parts(parts, output: str | os.PathLike) -> dict:
    """Join shard part files into one cache at `output` with HDF5 virtual datasets.

    Args:
        parts: the part files, in any order (each written by `cache_features(shard=...)`).
        output: the joined cache (.h5), written atomically; it refers to the parts by their
            paths relative to its folder.

    Returns:
        {"path", "rows", "parts", "taps", "fingerprint"} of the joined cache.

    Raises:
        CacheIncomplete: a part missing, unfinished, or shards missing from the list.
        CacheMismatch: parts of different caches (fingerprint, taps, data or settings
            differ), a shard given twice, or a file that is not a part.
        OutputError: `output` is not an .h5 file.
    """
    import h5py
    import numpy as np

    from reuse.core.atomic import commit
    from reuse.core.errors import OutputError

    out = Path(output)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise OutputError(f"a feature cache is an HDF5 file. Received: -o {out}", "use -o NAME.h5")
    read = [_read_part(Path(p)) for p in parts]
    if not read:
        raise UsageError("no parts to merge", "pass the part files: --merge PART1.h5 PART2.h5 ...")
    first = read[0]["attrs"]
    for part in read[1:]:
        for key in _SAME:
            if part["attrs"].get(key) != first.get(key):
                raise CacheMismatch(
                    f"{part['path']} and {read[0]['path']} are shards of different caches "
                    f"({key.replace('_', ' ')} differs)",
                    "merge the parts made by one cache-features command with one model and data",
                )
    count = int(first["shard"].split("/")[1])
    by_index: dict[int, dict] = {}
    for part in read:
        index = int(part["attrs"]["shard"].split("/")[0])
        if index in by_index:
            raise CacheMismatch(
                f"shard {index}/{count} given twice ({by_index[index]['path']}, {part['path']})",
                "pass each part once",
            )
        by_index[index] = part
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise CacheIncomplete(
            f"shard(s) {', '.join(f'{i}/{count}' for i in missing[:8])} missing: {len(by_index)} of {count} parts given",
            "make them with cache-features --shard I/N, then merge all parts",
        )
    ordered = [by_index[i] for i in range(count)]
    total = int(first["total_rows"])
    for index, part in enumerate(ordered):
        start, stop = int(part["attrs"]["shard_start"]), int(part["attrs"]["shard_stop"])
        if (start, stop) != shard_range(total, index, count) or int(
            part["attrs"]["rows"]
        ) != stop - start:
            raise CacheMismatch(
                f"{part['path']} holds rows {start}..{stop} but shard {index}/{count} of {total} rows should",
                "make that shard again",
            )

    tmp = part_path(out)
    tmp.unlink(missing_ok=True)
    folder = out.resolve().parent
    with h5py.File(tmp, "w", track_order=True) as f:
        for name, (shape, dtype, ds_attrs) in ordered[0]["sets"].items():
            # Row axis: 0, except the views (K, N, ...): 1.
            axis = 1 if name.startswith("views/") or name == INPUT_VIEWS_DATASET else 0
            full = list(shape)
            full[axis] = total
            layout = h5py.VirtualLayout(shape=tuple(full), dtype=dtype)
            for part in ordered:
                start, stop = int(part["attrs"]["shard_start"]), int(part["attrs"]["shard_stop"])
                part_shape = part["sets"][name][0]
                source = h5py.VirtualSource(
                    os.path.relpath(part["path"].resolve(), folder), name, shape=part_shape
                )
                if axis == 0:
                    layout[start:stop] = source
                else:
                    layout[:, start:stop] = source
            ds = f.create_virtual_dataset(
                name, layout, fillvalue=np.nan if dtype.kind == "f" else 0
            )
            for key, value in ds_attrs.items():
                # A part's digest covers that part's rows only; each part keeps its own.
                if key != DIGEST_ATTR:
                    ds.attrs[key] = value
        for key, value in first.items():
            if key not in SHARD_ATTRS:
                f.attrs[key] = value
        f.attrs["rows"] = total
        f.attrs["rows_done"] = total
        f.attrs["complete"] = True
        f.attrs["parts"] = json.dumps(
            [os.path.relpath(p["path"].resolve(), folder) for p in ordered]
        )
    commit(tmp, out)
    return {
        "path": out,
        "rows": total,
        "parts": [p["path"] for p in ordered],
        "taps": json.loads(first["taps"]),
        "fingerprint": first["fingerprint"],
    }


def check_parts(path: Path, attrs: dict) -> None:
    """Refuse a joined cache whose part files are gone (a virtual dataset would read them as
    fill values), and a lone part opened as a whole cache.

    Raises:
        CacheIncomplete: a part of the joined cache is missing.
        CacheMismatch: `path` is one shard of a cache, not a whole one.
    """
    if "shard" in attrs:
        raise CacheMismatch(
            f"{path} is shard {attr_value(attrs['shard'])} of a cache, not a whole cache",
            f"join the parts: reuse cache-features --merge {shard_glob(path)} -o CACHE.h5",
        )
    if "parts" not in attrs:
        return
    folder = Path(path).resolve().parent
    gone = [p for p in json.loads(attr_value(attrs["parts"])) if not (folder / p).exists()]
    if gone:
        raise CacheIncomplete(
            f"{path} joins {len(json.loads(attr_value(attrs['parts'])))} part files and {len(gone)} are missing ({', '.join(gone[:3])})",
            "keep the part files beside the joined cache, or make the missing shards again and merge",
        )


def shard_glob(path: Path) -> str:
    """A shell pattern matching every part of the cache `path` belongs to."""
    return re.sub(r"\.part-\d+-of-(\d+)", r".part-*-of-\1", str(path))
