"""The feature cache: HDF5 files of what the frozen part of a model computes.

`cache_features` runs the layers below one or more taps (valid cut points, see `reuse.surgery.cuts`)
once over a data set, streaming batches into one HDF5 file; `finetune` then trains what is
above a tap from the file instead of running the frozen layers every epoch.

File layout (format 1):

    features/<tap>      one dataset per tap, rows chunked to the batch size; `/` in nested
                        names is written `%2F` (the real name is the dataset's `tap` attribute)
    labels              the (remapped) labels, when the data has them
    indices             int64 source row index of each cached row

Root attributes: `reuse_feature_cache` (format version), `reuse_version`, `fingerprint`,
`fingerprint_architecture`, `fingerprint_weights`, `layer_digests` (JSON: per-layer config and
weight digests, to say what differs), `taps` (JSON list), `tap_datasets` (JSON),
`data_identity` (JSON: path, size, sha256, selection), `class_map` (JSON), `rows`,
`rows_done`, `batch_size`, `compression`, `input_adapter`, `model_name`, `model_path`,
`created` (the only timing attribute), and `complete`, written last.

Trust: the file is written as `.<name>.part.h5` beside the output and renamed when complete;
`rows_done` is updated after each flushed forward call (a group of whole batches) so `resume=True` continues a killed run and,
because batches are the same, yields the same content as an uninterrupted run; a spot check
(`verify`) recomputes random rows through the live model; `open_cache` refuses an incomplete
file or one whose fingerprint differs from the model it is used with.

Compression default: none. Measured (bench/bench_cache.py, the 300 ELU features of a
784->5x300 MLP, 60,000 rows, batch 256, shared 2-core machine; write / batched read of the
whole tap / size): none 1.8 s / 0.05 s / 73.2 MB; lzf 4.7 s / 0.01 s / 73.0 MB; gzip:1
7.2 s / 0.93 s / 67.4 MB; gzip:4 9.3 s / 0.82 s / 67.3 MB. Dense float features barely
compress (ELU outputs have no exact zeros): gzip saves 8% and makes every epoch's read ~17x
slower; lzf saves nothing and more than doubles the write. Reads from the page cache are
cheap either way, so none wins. lzf pays off for sparse features (ReLU convolution outputs
with many exact zeros): choose it with --compression lzf.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.core.errors import CacheIncomplete, CacheMismatch, DataError, OutputError, UsageError

CACHE_MARK = "reuse_feature_cache"
FORMAT_VERSION = 1
DEFAULT_COMPRESSION = "none"
TIMING_ATTRS = ("created",)
_DELAY_ENV = (
    "REUSE_TEST_BATCH_DELAY"  # seconds to sleep per forward call: lets tests kill a run midway
)


def is_cache(path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return CACHE_MARK in f.attrs
    except OSError:
        return False


def tap_dataset_name(tap: str) -> str:
    """The HDF5 dataset name for a tap: `/` (nested models) escaped as %2F."""
    return "features/" + tap.replace("%", "%25").replace("/", "%2F")


def part_path(output: str | os.PathLike) -> Path:
    """The deterministic temporary name a cache is written under: `.<name>.part.h5`."""
    out = Path(output)
    return out.with_name(f".{out.stem}.part{out.suffix or '.h5'}")


def parse_compression(spec: str | None) -> tuple[str | None, int | None, str]:
    """`none|lzf|gzip[:level]` -> (h5py compression, options, canonical spec).

    Raises:
        UsageError: an unknown method or a gzip level outside 0-9.
    """
    spec = (spec or DEFAULT_COMPRESSION).strip().lower()
    method, _, level = spec.partition(":")
    if method == "none" and not level:
        return None, None, "none"
    if method == "lzf" and not level:
        return "lzf", None, "lzf"
    if method == "gzip":
        try:
            value = int(level) if level else 4
        except ValueError:
            value = -1
        if not 0 <= value <= 9:
            raise UsageError(
                f"gzip level must be 0-9. Received: --compression {spec}",
                "use e.g. --compression gzip:4",
            )
        return "gzip", value, f"gzip:{value}"
    raise UsageError(f"unknown compression '{spec}'", "use --compression none, lzf or gzip[:level]")


# --- fingerprint -----------------------------------------------------------------------------

# Config keys that do not change what the frozen layers compute, and that finetune may change.
_IGNORED_KEY_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_IGNORED_KEYS = {"trainable", "seed"}


def _clean_config(value):
    if isinstance(value, dict):
        return {
            k: _clean_config(v)
            for k, v in sorted(value.items())
            if k not in _IGNORED_KEYS and not k.endswith(_IGNORED_KEY_SUFFIXES)
        }
    if isinstance(value, (list, tuple)):
        return [_clean_config(v) for v in value]
    return value


def _layer_config(layer) -> str:
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - some ops have no config; their class stands for them
        config = {}
    return json.dumps(_clean_config(config), sort_keys=True, default=str)


def fingerprint(model, taps: list[str], graph=None) -> dict:
    """Digests of everything the taps depend on: the layers' configs, wiring and weights.

    `finetune` calls this with the cache's taps and compares it with the cache's attributes.

    Example:
        >>> fp = fingerprint(model, ["hidden2"])
        >>> fp["fingerprint"] == open_cache("feats.h5").fingerprint

    Args:
        model: the Keras model.
        taps: tap names (valid cut points).
        graph: a `reuse.surgery.cuts.trace(model)` result, to avoid tracing again.

    Returns:
        {"fingerprint", "architecture", "weights": sha256 hex digests, "taps": full tap
        names, "layers": {path: {"config": digest, "weights": digest}}}.

    Raises:
        LayerNotFound, CutError: a tap is not a valid cut point of the model.
    """
    from reuse.surgery import cuts

    graph = graph or cuts.trace(model)
    paths = [cuts.check_cut(model, t, graph) for t in taps]
    positions = [graph.by_path(p).position for p in paths]
    arch, weights = hashlib.sha256(), hashlib.sha256()
    for t in graph.inputs:
        arch.update(f"input {tuple(t.shape[1:])} {t.dtype}\n".encode())
    layers = {}
    for p in graph.ancestors(positions):
        call = graph.calls[p]
        sources = [
            graph.calls[graph.producer[i]].path if graph.producer.get(i, -1) >= 0 else "<input>"
            for i in call.inputs
        ]
        config = f"{call.path} {type(call.layer).__name__} {sources} {_layer_config(call.layer)}\n"
        arch.update(config.encode())
        w_digest = hashlib.sha256()
        for w in getattr(call.layer, "weights", []):
            value = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w))
            w_digest.update(f"{value.shape} {value.dtype}\n".encode())
            w_digest.update(value.tobytes())
        weights.update(call.path.encode() + b"\n" + w_digest.digest())
        layers[call.path] = {
            "config": hashlib.sha256(config.encode()).hexdigest()[:16],
            "weights": w_digest.hexdigest()[:16],
        }
    total = hashlib.sha256()
    total.update(arch.digest() + weights.digest() + json.dumps(paths).encode())
    return {
        "fingerprint": total.hexdigest(),
        "architecture": arch.hexdigest(),
        "weights": weights.hexdigest(),
        "taps": paths,
        "layers": layers,
    }


# --- writing ---------------------------------------------------------------------------------


@dataclass
class CacheResult:
    """What `cache_features` wrote."""

    path: Path
    taps: list[str]
    rows: int
    shapes: dict[str, tuple]
    fingerprint: str
    seconds: float
    resumed_at: int = 0  # rows already written by an earlier run (0: fresh)
    verified: int = 0  # rows checked against the live model
    notes: list[str] = field(default_factory=list)


def _release_pages(x, upto: int) -> None:
    """Drop the pages of a memory-mapped input below row `upto` from this process's RSS.

    Reading a memmap maps each page touched; without this a 2 GB input ends up resident.
    """
    mm = getattr(x, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or upto <= 0:
        return
    import mmap

    row_bytes = int(np.prod(x.shape[1:])) * x.dtype.itemsize
    # np.memmap maps from the allocation boundary below its offset.
    offset = getattr(x, "offset", 0) % mmap.ALLOCATIONGRANULARITY
    end = offset + upto * row_bytes
    end -= end % mmap.PAGESIZE
    if end > 0:
        try:
            mm.madvise(mmap.MADV_DONTNEED, 0, min(end, len(mm)))
        except (OSError, ValueError):
            pass


def _check_layers(graph, positions: list[int], allow_augmentation_skip: bool) -> list[str]:
    """Notes for training-only layers below the taps; refuse augmentation layers."""
    from reuse.surgery import cuts

    below = [graph.calls[p] for p in graph.ancestors(positions)]
    notes = []
    augment = [c.path for c in below if cuts.is_augmentation(c.layer)]
    if augment and not allow_augmentation_skip:
        raise UsageError(
            f"the cached layers include augmentation layers ({', '.join(augment)}), which a cache "
            "would run once, in inference mode (no augmentation)",
            "cut below them with --at, or pass --allow-augmentation-skip to cache without augmentation",
        )
    if augment:
        notes.append(
            f"caching runs the augmentation layers {', '.join(augment)} in inference mode (no augmentation)"
        )
    noise = [c.path for c in below if cuts.is_training_noise(c.layer)]
    if noise:
        notes.append(
            f"caching runs {', '.join(noise)} in inference mode (no dropout or noise in the cached features)"
        )
    trainable = [
        c.path
        for c in below
        if getattr(c.layer, "trainable", False) and getattr(c.layer, "trainable_weights", [])
    ]
    if trainable:
        notes.append(
            f"the cached layers include trainable layers ({', '.join(trainable[:5])}"
            f"{', ...' if len(trainable) > 5 else ''}); the cache is valid only while their weights stay as they are"
        )
    return notes


# Rows per forward call: whole batches, up to 512 rows or 32 MB of input. Fewer calls into
# TensorFlow: MLP bench 0.8x -> 1.02x of a bare pass, conv 0.97x (1,024 rows slowed the conv
# net to 0.74x); big inputs (images) keep one batch per call.
COMPUTE_ROWS = 512
COMPUTE_BYTES = 32 << 20


def _forward(bottom, pad_to: int | None = None):
    """The batched forward pass: list of tap outputs for an input batch.

    Batches shorter than `pad_to` are padded with zeros (and the padding dropped), so the
    compiled function is traced for one batch shape only: the last batch and the spot check
    cost no retracing.
    """
    n_out = len(bottom.outputs)

    def run(x):
        n = len(x)
        if pad_to and n < pad_to:
            x = np.concatenate([x, np.zeros((pad_to - n, *x.shape[1:]), dtype=x.dtype)])
        # predict_on_batch runs a compiled function in inference mode: measured 3.5x faster
        # than bottom(x, training=False) on the MLP bench and 1.4x on the conv net.
        out = bottom.predict_on_batch(x)
        out = list(out) if n_out > 1 else [out]
        return [o[:n] for o in out]

    return run


def _prefetch(iterable, depth: int = 2):
    """Iterate in a background thread, `depth` items ahead: reading the next batch overlaps
    the forward pass (TensorFlow releases the GIL while it computes)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    done, errors = object(), []

    def produce():
        try:
            for item in iterable:
                q.put(item)
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            errors.append(err)
        finally:
            q.put(done)

    threading.Thread(target=produce, daemon=True, name="reuse-prefetch").start()
    while True:
        item = q.get()
        if item is done:
            break
        yield item
    if errors:
        raise errors[0]


class _Writer:
    """Writes computed batches to HDF5 in a background thread, in order.

    `rows_done` is updated and the file flushed after each batch, so a killed run resumes
    after the last batch that reached the file.
    """

    def __init__(self, handle, sets, depth: int = 2):
        import queue
        import threading

        self._f, self._sets = handle, sets
        self._q: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="reuse-writer")
        self._thread.start()

    def _run(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue
            offset, outs = item
            try:
                for ds, value in zip(self._sets, outs, strict=True):
                    ds[offset : offset + len(value)] = np.asarray(value, dtype=ds.dtype)
                self._f.attrs.modify("rows_done", offset + len(outs[0]))
                self._f.flush()
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller
                self._error = err

    def put(self, offset: int, outs: list) -> None:
        if self._error is not None:
            raise self._error
        self._q.put((offset, [np.asarray(o) for o in outs]))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _plan_attrs(
    model, taps, fp, data, batch_size, comp_spec, adapter_name, shapes, dtypes, model_path
):
    from reuse._version import __version__

    return {
        CACHE_MARK: FORMAT_VERSION,
        "reuse_version": __version__,
        "fingerprint": fp["fingerprint"],
        "fingerprint_architecture": fp["architecture"],
        "fingerprint_weights": fp["weights"],
        "layer_digests": json.dumps(fp["layers"], sort_keys=True),
        "taps": json.dumps(taps),
        "tap_datasets": json.dumps({t: tap_dataset_name(t) for t in taps}),
        "tap_shapes": json.dumps({t: list(shapes[t]) for t in taps}),
        "tap_dtypes": json.dumps(dtypes),
        "data_identity": json.dumps(data.identity, sort_keys=True, default=str),
        "class_map": json.dumps(
            {str(k): v for k, v in data.class_map.items()} if data.class_map else None
        ),
        "rows": len(data),
        "batch_size": batch_size,
        "compression": comp_spec,
        "input_adapter": adapter_name,
        "model_name": model.name,
        "model_path": str(Path(model_path).resolve()) if model_path else "",
    }


# Attributes that must agree for --resume to continue a partial file.
_RESUME_KEYS = (
    "fingerprint",
    "taps",
    "data_identity",
    "rows",
    "batch_size",
    "compression",
    "input_adapter",
)


def cache_features(
    model,
    data,
    output: str | os.PathLike,
    *,
    taps: list[str] | None = None,
    batch_size: int = 256,
    compression: str | None = None,
    resume: bool = False,
    verify: int = 3,
    allow_augmentation_skip: bool = False,
    model_path: str | os.PathLike | None = None,
    progress=None,
) -> CacheResult:
    """Run the layers below `taps` once over `data` and stream their outputs to HDF5.

    Example:
        >>> result = cache_features(model, load_data("train.npz"), "feats.h5", taps=["hidden2"])
        >>> result.rows, result.taps

    Args:
        model: a Keras model (usually with its lower layers frozen).
        data: a `reuse.data.dataset.Dataset`.
        output: the HDF5 file to write (replaced atomically).
        taps: layer names to cache (valid cut points); default: the top frozen layer.
        batch_size: rows per forward pass, and rows per HDF5 chunk.
        compression: "none" (default), "lzf" or "gzip[:level]".
        resume: continue an interrupted run from `.<name>.part.h5`.
        verify: recompute this many random rows through the model and compare.
        allow_augmentation_skip: cache through Random* augmentation layers (inference mode).
        model_path: where the model came from (recorded, and used in rebuild hints).
        progress: wraps the batch iterator (e.g. `reuse.core.report.track`); None: plain.

    Returns:
        A CacheResult.

    Raises:
        CutError, LayerNotFound: a tap is not a valid cut point.
        UsageError: no frozen layers and no taps; augmentation layers; bad options.
        DataError: empty data, or an input shape that does not fit the model.
        CacheMismatch: `resume` with a partial file made with other settings, or a failed
            spot check.
    """
    import h5py

    from reuse.core import report
    from reuse.surgery import cuts

    started = time.perf_counter()
    if batch_size <= 0:
        raise UsageError(
            f"`batch_size` must be > 0. Received: batch_size={batch_size}",
            "use e.g. --batch-size 256",
        )
    if verify < 0:
        raise UsageError(
            f"`verify` must be >= 0. Received: verify={verify}", "use e.g. --verify 3, or 0 to skip"
        )
    comp, comp_opts, comp_spec = parse_compression(compression)
    if Path(output).suffix.lower() not in (".h5", ".hdf5"):
        raise OutputError(
            f"a feature cache is an HDF5 file. Received: -o {output}", "use -o NAME.h5"
        )
    if len(model.inputs) != 1:
        raise UsageError(
            f"model {model.name} has {len(model.inputs)} inputs",
            "cache-features handles single-input models",
        )
    n = len(data)
    if n == 0:
        raise DataError(
            f"{getattr(data, 'path', 'data')}: the selection is empty (0 rows)",
            "check --classes / --limit",
        )

    graph = cuts.trace(model)
    if not taps:
        default = cuts.frozen_prefix_top(model, graph)
        if default is None:
            raise UsageError(
                f"model {model.name} has no frozen layers, so there is no default cut",
                "freeze the reused layers first (reuse freeze MODEL --upto NAME), or name the taps with --at",
            )
        taps = [default]
    paths = []
    for t in taps:
        p = cuts.check_cut(model, t, graph)
        if p not in paths:
            paths.append(p)
    # Order taps from the input up, so `taps[-1]` is the deepest.
    order = {c.path: c.position for c in graph.calls}
    paths.sort(key=order.__getitem__)
    positions = [order[p] for p in paths]
    notes = _check_layers(graph, positions, allow_augmentation_skip)
    for note in notes:
        report.info(f"Note: {note}")

    from reuse.data.shapes import fit_model

    fit = fit_model(data.input_shape, model, source=getattr(data, "path", "data"))
    adapter, adapter_name = (fit.apply if fit.changes else None), fit.kind
    bottom = cuts.bottom_model(model, paths, graph)
    # The forward pass runs on groups of batches (fewer calls into TensorFlow); rows are still
    # chunked to the batch size in the file.
    row_bytes = 4 * int(np.prod(data.input_shape)) or 4
    step = batch_size * max(1, min(COMPUTE_ROWS, COMPUTE_BYTES // row_bytes) // batch_size)
    forward = _forward(bottom, min(step, n))
    refs = [graph.by_path(p).outputs[0] for p in paths]
    shapes = {p: tuple(int(d) for d in r.shape[1:]) for p, r in zip(paths, refs, strict=False)}
    dtypes = {
        p: (str(r.dtype) if str(r.dtype) in ("float16", "float32", "float64") else "float32")
        for p, r in zip(paths, refs, strict=False)
    }
    fp = fingerprint(model, paths, graph)
    attrs = _plan_attrs(
        model, paths, fp, data, batch_size, comp_spec, adapter_name, shapes, dtypes, model_path
    )

    out = Path(output)
    part = part_path(out)
    start_row = 0
    if resume and part.exists():
        start_row = _resumable_rows(part, attrs)
        report.info(f"Resuming {part.name} at row {start_row:,} of {n:,}")
    elif part.exists():
        report.info(
            f"Note: starting over; an unfinished cache {part} from an earlier run is replaced (--resume continues it)"
        )
        part.unlink()
    elif resume:
        report.info(f"Note: no unfinished cache {part.name} to resume; starting from the first row")
    if start_row == 0:
        _create(part, attrs, data, paths, shapes, dtypes, batch_size, comp, comp_opts)

    delay = float(os.environ.get(_DELAY_ENV, "0") or 0)
    try:
        with h5py.File(part, "r+") as f:
            sets = [f[tap_dataset_name(p)] for p in paths]
            batches = data.batches(step, start=start_row)
            total = (n - start_row + step - 1) // step
            if progress is not None:
                batches = progress(batches, total=total, description="caching features")
            writer = _Writer(f, sets)
            try:
                for offset, xb, _ in _prefetch(batches):
                    if adapter is not None:
                        xb = adapter(xb)
                    writer.put(offset, forward(xb))
                    # Pages of a memory-mapped input already read are dropped from RSS.
                    _release_pages(
                        getattr(data, "x", None), int(data.indices[offset + len(xb) - 1])
                    )
                    if delay:
                        time.sleep(delay)
            finally:
                writer.close()
        verified = (
            _spot_check(part, model, data, paths, verify, adapter, forward=forward) if verify else 0
        )
        with h5py.File(part, "r+") as f:
            if int(f.attrs["rows_done"]) != n:
                raise CacheIncomplete(
                    f"{part} holds {int(f.attrs['rows_done'])} of {n} rows",
                    "run the command again with --resume",
                )
            f.attrs["complete"] = True
        from reuse.core.atomic import commit

        commit(part, out)  # fsync, rename, fsync the folder
    except KeyboardInterrupt:
        report.warn(
            f"interrupted; the rows written so far are kept in {part} — continue with --resume"
        )
        raise
    except CacheMismatch:
        # A failed spot check must not leave a file that looks resumable and good.
        part.unlink(missing_ok=True)
        raise
    return CacheResult(
        path=out,
        taps=paths,
        rows=n,
        shapes=shapes,
        fingerprint=fp["fingerprint"],
        seconds=time.perf_counter() - started,
        resumed_at=start_row,
        verified=verified,
        notes=notes,
    )


def _create(
    part: Path, attrs: dict, data, paths, shapes, dtypes, batch_size, comp, comp_opts
) -> None:
    import h5py

    n = len(data)
    with h5py.File(part, "w", track_order=True) as f:
        for p in paths:
            ds = f.create_dataset(
                tap_dataset_name(p),
                shape=(n, *shapes[p]),
                dtype=dtypes[p],
                chunks=(min(batch_size, n), *shapes[p]),
                compression=comp,
                compression_opts=comp_opts,
            )
            ds.attrs["tap"] = p
        if data.y is not None:
            f.create_dataset("labels", data=np.asarray(data.y))
        f.create_dataset("indices", data=np.asarray(data.indices, dtype=np.int64))
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["rows_done"] = 0


def _resumable_rows(part: Path, attrs: dict) -> int:
    import h5py

    try:
        with h5py.File(part, "r") as f:
            old = {k: f.attrs.get(k) for k in _RESUME_KEYS}
            done = int(f.attrs.get("rows_done", 0))
    except OSError as err:
        raise CacheIncomplete(
            f"the unfinished cache {part} cannot be read ({str(err).splitlines()[0][:100]})",
            "run the command again without --resume to start over",
        ) from None
    for key in _RESUME_KEYS:
        if _attr_value(old[key]) != _attr_value(attrs[key]):
            raise CacheMismatch(
                f"the unfinished cache {part} was started with a different {key.replace('_', ' ')}",
                "run the same command as before with --resume, or drop --resume to start over",
            )
    return done


def _attr_value(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows_of(data, rows: np.ndarray) -> np.ndarray:
    """Input rows at sorted selection positions `rows`."""
    if hasattr(data, "take"):
        return data.take(rows)[0]
    wanted, found = set(int(r) for r in rows), {}
    for offset, xb, _ in data.batches(1024):
        for r in wanted & set(range(offset, offset + len(xb))):
            found[r] = xb[r - offset]
    return np.stack([found[int(r)] for r in rows])


def _spot_check(path, model, data, taps, n_rows, adapter, rows=None, forward=None) -> int:
    """Recompute rows through the live model and compare them with the file."""
    import h5py

    from reuse.surgery import cuts

    if forward is None:
        forward = _forward(cuts.bottom_model(model, taps))
    with h5py.File(path, "r") as f:
        total = int(f.attrs["rows"])
        if rows is None:
            rng = np.random.default_rng()
            rows = np.sort(rng.choice(total, size=min(n_rows, total), replace=False))
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        xb = _rows_of(data, rows)
        if adapter is not None:
            xb = adapter(xb)
        live = forward(xb)
        for tap, value in zip(taps, live, strict=False):
            stored = f[tap_dataset_name(tap)][rows]
            value = np.asarray(value, dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(value))) if value.size else 1.0)
            close = np.isclose(stored, value, rtol=1e-5, atol=1e-6 * scale)
            if not close.all():
                bad = rows[np.unique(np.nonzero(~close)[0])]
                raise CacheMismatch(
                    f"{path}: row {int(bad[0])} of tap '{tap}' differs from what the model computes "
                    f"(max difference {float(np.max(np.abs(stored - value))):.3g})",
                    "the cache is damaged or was made with other weights; rebuild it with reuse cache-features",
                )
    return len(rows)


# --- reading ---------------------------------------------------------------------------------


class FeatureCache:
    """A complete feature cache, opened for reading (use `open_cache`).

    Example:
        >>> cache = open_cache("feats.h5", model=model)
        >>> x = cache.array(cache.taps[-1]); y = cache.labels
    """

    def __init__(self, path: Path, handle):
        self.path = path
        self._f = handle
        a = handle.attrs
        self.taps: list[str] = json.loads(_attr_value(a["taps"]))
        self.fingerprint: str = _attr_value(a["fingerprint"])
        self.data_identity: dict = json.loads(_attr_value(a["data_identity"]))
        cm = json.loads(_attr_value(a.get("class_map", "null")))
        self.class_map: dict | None = {int(k): v for k, v in cm.items()} if cm else None
        self.rows: int = int(a["rows"])
        self.batch_size: int = int(a["batch_size"])
        self.model_path: str = _attr_value(a.get("model_path", ""))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()

    def __len__(self) -> int:
        return self.rows

    @property
    def attrs(self) -> dict:
        return {k: _attr_value(v) for k, v in self._f.attrs.items()}

    def dataset(self, tap: str):
        """The h5py dataset of a tap (lazy; slice it to read rows)."""
        name = self._tap_name(tap)
        return self._f[tap_dataset_name(name)]

    def array(self, tap: str) -> np.ndarray:
        """All rows of a tap, in memory."""
        return self.dataset(tap)[...]

    def shape(self, tap: str) -> tuple:
        return tuple(self.dataset(tap).shape[1:])

    @property
    def labels(self) -> np.ndarray | None:
        return self._f["labels"][...] if "labels" in self._f else None

    @property
    def indices(self) -> np.ndarray:
        return self._f["indices"][...]

    def batches(
        self,
        tap: str,
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        seed: int | None = None,
    ):
        """(x, y) batches of a tap; shuffled by chunk and within each chunk when `shuffle`."""
        ds = self.dataset(tap)
        y = self.labels
        chunk = self.batch_size
        starts = np.arange(0, self.rows, chunk)
        rng = np.random.default_rng(seed)
        if shuffle:
            rng.shuffle(starts)
        size = batch_size or chunk
        buffer_x, buffer_y = [], []
        for s in starts:
            xb = ds[s : s + chunk]
            yb = None if y is None else y[s : s + chunk]
            if shuffle:
                perm = rng.permutation(len(xb))
                xb = xb[perm]
                yb = None if yb is None else yb[perm]
            buffer_x.append(xb)
            buffer_y.append(yb)
            pending = sum(len(b) for b in buffer_x)
            while pending >= size:
                bx = np.concatenate(buffer_x)
                by = None if y is None else np.concatenate(buffer_y)
                yield bx[:size], (None if by is None else by[:size])
                buffer_x, buffer_y = [bx[size:]], [None if by is None else by[size:]]
                pending -= size
        if buffer_x and sum(len(b) for b in buffer_x):
            bx = np.concatenate(buffer_x)
            yield bx, (None if y is None else np.concatenate(buffer_y))

    def check_data(self, data) -> None:
        """Refuse data other than the data the cache was made from.

        Raises:
            CacheMismatch: path, content hash or selection differ.
        """
        mine, theirs = self.data_identity, dict(data.identity)
        for key in ("sha256", "selection"):
            if key in mine and str(mine.get(key)) != str(theirs.get(key)):
                what = "content" if key == "sha256" else "selection"
                raise CacheMismatch(
                    f"{self.path} was made from other data ({what} differs: cache has "
                    f"{mine.get('path')} {mine.get('selection') or ''}, this is {theirs.get('path')} {theirs.get('selection') or ''})",
                    f"rebuild it: {self.rebuild_command()}",
                )

    def verify(self, model, data, n: int = 3, rows=None) -> int:
        """Recompute `n` random rows (or `rows`) through `model` and compare them.

        Raises:
            CacheMismatch: a row differs.
        """
        from reuse.data.shapes import fit_model

        fit = fit_model(data.input_shape, model, source=getattr(data, "path", "data"))
        adapter = fit.apply if fit.changes else None
        return _spot_check(self.path, model, data, self.taps, n, adapter, rows=rows)

    def rebuild_command(self, model_path: str | None = None) -> str:
        data = self.data_identity.get("path", "DATA")
        return (
            f"reuse cache-features {model_path or self.model_path or 'MODEL'} --data {data} "
            f"--at {','.join(self.taps)} -o {self.path}"
        )

    def _tap_name(self, tap: str) -> str:
        if tap in self.taps:
            return tap
        bare = [t for t in self.taps if t.rsplit("/", 1)[-1] == tap]
        if len(bare) == 1:
            return bare[0]
        from reuse.core.spec_grammar import closest

        near = closest(tap, self.taps)
        raise CacheMismatch(
            f"{self.path} has no tap '{tap}' (taps: {', '.join(self.taps)})",
            f"did you mean: {', '.join(near)}" if near else "rebuild it with --at " + tap,
        )


def open_cache(
    path: str | os.PathLike,
    model=None,
    taps: list[str] | None = None,
    *,
    model_path: str | None = None,
) -> FeatureCache:
    """Open a complete feature cache; with `model`, refuse one made from another model.

    Example:
        >>> with open_cache("feats.h5", model=model) as cache:
        ...     x, y = cache.array("hidden2"), cache.labels

    Args:
        path: the HDF5 cache.
        model: the model it will be used with; its fingerprint over the cache's taps must match.
        taps: taps the caller needs; each must be in the cache.
        model_path: the model's path, for the rebuild command in error messages.

    Returns:
        A FeatureCache (close it, or use it as a context manager).

    Raises:
        CacheIncomplete: the file is an unfinished cache.
        CacheMismatch: not a cache; a tap missing; the model's layers up to the taps differ
            (the message says whether architecture, weights or tap names differ, and how to rebuild).
    """
    import h5py

    p = Path(path)
    if not p.exists():
        part = part_path(p)
        if part.exists():
            raise CacheIncomplete(
                f"{p} was not finished (the unfinished rows are in {part.name})",
                "run `reuse cache-features ... --resume` with the same options to finish it",
            )
        raise DataError(
            f"{p}: no such file", "check the --features path, or run reuse cache-features"
        )
    try:
        handle = h5py.File(p, "r")
    except OSError as err:
        raise DataError(
            f"{p} is not a readable HDF5 file ({str(err).splitlines()[0][:100]})",
            "rebuild the cache",
        ) from None
    try:
        if CACHE_MARK not in handle.attrs:
            raise CacheMismatch(
                f"{p} is an HDF5 file but not a reuse feature cache",
                "make one with reuse cache-features",
            )
        if not bool(handle.attrs.get("complete", False)):
            done = int(handle.attrs.get("rows_done", 0))
            raise CacheIncomplete(
                f"{p} is incomplete ({done:,} of {int(handle.attrs.get('rows', 0)):,} rows written)",
                "run `reuse cache-features ... --resume` with the same options to finish it",
            )
        cache = FeatureCache(p, handle)
        for t in taps or []:
            cache._tap_name(t)
        if model is not None:
            _check_model(cache, model, model_path)
        return cache
    except BaseException:
        handle.close()
        raise


def _check_model(cache: FeatureCache, model, model_path: str | None) -> None:
    from reuse.core.errors import CutError, LayerNotFound
    from reuse.surgery import cuts

    hint = f"rebuild it: {cache.rebuild_command(model_path)}"
    graph = cuts.trace(model)
    try:
        fp = fingerprint(model, cache.taps, graph)
    except (LayerNotFound, CutError) as err:
        raise CacheMismatch(
            f"{cache.path} does not fit model {model.name}: tap names differ ({err.message})", hint
        ) from None
    if fp["fingerprint"] == cache.fingerprint:
        return
    attrs = cache.attrs
    stored = json.loads(attrs.get("layer_digests", "{}"))
    if fp["taps"] != cache.taps:
        what = f"tap names differ (cache: {', '.join(cache.taps)}; model: {', '.join(fp['taps'])})"
    elif fp["architecture"] != attrs.get("fingerprint_architecture"):
        changed = [
            k
            for k in fp["layers"]
            if k not in stored or stored[k]["config"] != fp["layers"][k]["config"]
        ]
        gone = [k for k in stored if k not in fp["layers"]]
        detail = ", ".join(changed[:3] + gone[:3]) or "layer wiring"
        what = f"the architecture up to the taps differs ({detail})"
    else:
        changed = [
            k
            for k in fp["layers"]
            if stored.get(k, {}).get("weights") != fp["layers"][k]["weights"]
        ]
        what = f"the weights of {', '.join(changed[:5]) or 'the frozen layers'} differ"
    raise CacheMismatch(f"{cache.path} was made with another model: {what}", hint)


def inspect_cache(path: str | os.PathLike):
    """Describe a cache for `reuse inspect feats.h5`: metadata, completeness, one row per dataset."""
    import h5py

    from reuse.inspection.dispatch import Inspection

    p = Path(path)
    rows = []
    with h5py.File(p, "r") as f:
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                rows.append(
                    {
                        "dataset": name,
                        "tap": _attr_value(obj.attrs.get("tap", "")) or None,
                        "shape": list(obj.shape),
                        "dtype": str(obj.dtype),
                        "chunks": list(obj.chunks) if obj.chunks else None,
                        "compression": obj.compression or "none",
                        "stored_bytes": int(obj.id.get_storage_size()),
                    }
                )

        f.visititems(visit)
    identity = json.loads(attrs.get("data_identity", "{}") or "{}")
    complete = bool(attrs.get("complete", False))
    info = {
        "complete": complete,
        "rows": int(attrs.get("rows", 0)),
        "rows_done": int(attrs.get("rows_done", 0)),
        "taps": json.loads(attrs.get("taps", "[]")),
        "fingerprint": attrs.get("fingerprint"),
        "model": attrs.get("model_path") or attrs.get("model_name"),
        "data": identity.get("path"),
        "data_sha256": identity.get("sha256"),
        "selection": identity.get("selection") or "",
        "class_map": json.loads(attrs.get("class_map", "null") or "null"),
        "batch_size": int(attrs.get("batch_size", 0)),
        "compression": attrs.get("compression"),
        "reuse_version": attrs.get("reuse_version"),
        "created": attrs.get("created"),
    }
    if not complete:
        info["status"] = "INCOMPLETE: finish it with `reuse cache-features ... --resume`"
    return Inspection(
        kind="cache",
        path=str(p),
        columns=["dataset", "tap", "shape", "dtype", "chunks", "compression", "stored_bytes"],
        rows=rows,
        info=info,
    )
