"""Write a feature cache: run the layers below the taps once over a data set, into one HDF5 file.

`cache_features` plans the file (taps ordered from the input up, the fingerprint, the data's
identity), writes it under `.<name>.part.h5` beside the output with the streaming machinery of
`reuse.cache.streaming`, spot-checks random rows against the live model
(`reuse.cache.verify`) and renames it when complete. `resume=True` continues a killed run
after the last row that reached the file, when the partial file was started with the same
settings; because batches are the same, the result equals an uninterrupted run. Only an
interrupt (Ctrl-C) keeps the partial file, and says so; any other error removes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reuse.cache.fingerprints import fingerprint
from reuse.cache.layout import (
    CACHE_MARK,
    DIGEST_ATTR,
    FORMAT_VERSION,
    INPUT_VIEWS_DATASET,
    digest,
    parse_compression,
    part_path,
    tap_dataset_name,
    views_dataset_name,
)
from reuse.cache.partfile import (
    check_views_fit,
    create_input_views,
    create_part,
    create_views,
    open_part,
    resumable_rows,
)
from reuse.cache.streaming import (
    COMPUTE_BYTES,
    COMPUTE_ROWS,
    BatchWriter,
    forward_pass,
    prefetch,
    release_pages,
)
from reuse.cache.verify import spot_check
from reuse.core.errors import (
    CacheIncomplete,
    DataError,
    Interrupted,
    OutputError,
    UsageError,
)

_DELAY_ENV = (
    "REUSE_TEST_BATCH_DELAY"  # seconds to sleep per forward call: lets tests kill a run midway
)


@dataclass
class CacheResult:
    """What `cache_features` wrote.

    Attributes:
        path: the complete cache file.
        taps: the full tap paths, ordered from the input up (`taps[-1]` is the deepest).
        rows: rows cached (the data's selection).
        shapes: per-row feature shape of each tap, e.g. {"hidden2": (300,)}.
        fingerprint: the model's fingerprint over the taps (sha256 hex).
        seconds: wall time of the call, in seconds.
        resumed_at: rows already written by an earlier run (0: fresh).
        verified: rows spot-checked against the live model.
        notes: what the caller should know (inference-mode layers, trainable cached layers).
    """

    path: Path
    taps: list[str]
    rows: int
    shapes: dict[str, tuple]
    fingerprint: str
    seconds: float
    resumed_at: int = 0  # rows already written by an earlier run (0: fresh)
    verified: int = 0  # rows checked against the live model
    notes: list[str] = field(default_factory=list)
    augment: str | None = None  # the spec of the augmented views, if any
    views: int = 0


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
# How features may be stored: float16 halves the file (`cache-features --dtype float16`).
STORAGE_DTYPES = ("float32", "float16")


def check_options(output, *, batch_size: int, verify: int, compression: str | None) -> None:
    """Refuse bad `cache_features` options before any model is loaded (no TensorFlow).

    Raises:
        UsageError: batch_size < 1, verify < 0 (exit code 2).
        SpecError: a malformed compression spec.
        OutputError: an output that is not .h5/.hdf5.
    """
    if batch_size <= 0:
        raise UsageError(
            f"`batch_size` must be > 0. Received: batch_size={batch_size}",
            "use e.g. --batch-size 256",
        )
    if verify < 0:
        raise UsageError(
            f"`verify` must be >= 0. Received: verify={verify}", "use e.g. --verify 3, or 0 to skip"
        )
    parse_compression(compression)
    if Path(output).suffix.lower() not in (".h5", ".hdf5"):
        raise OutputError(
            f"a feature cache is an HDF5 file. Received: -o {output}", "use -o NAME.h5"
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
    augment: str | None = None,
    views: int = 0,
    image_shape: tuple | None = None,
    seed: int = 0,
    dtype: str = "float32",
    mixed_precision: str | None = None,
    input_views: bool = False,
    shard: tuple[int, int] | None = None,
) -> CacheResult:
    """Run the layers below `taps` once over `data` and stream their outputs to HDF5.

    Example:
        >>> result = cache_features(model, load_data("train.npz"), "feats.h5", taps=["hidden2"])
        >>> result.rows, result.taps

    Args:
        model: a Keras model (usually with its lower layers frozen), or its path (read
            with `reuse.load_model`, safe mode; recorded as `model_path` unless given).
        data: a `reuse.data.dataset.Dataset`, or a data file's path (`reuse.load_data`).
        output: the HDF5 file to write (replaced atomically).
        taps: layer names to cache (valid cut points); default: the top frozen layer.
        batch_size: rows per forward pass, and rows per HDF5 chunk.
        compression: "none" (default), "lzf" or "gzip[:level]".
        resume: continue an interrupted run from `.<name>.part.h5`.
        verify: recompute this many random rows through the model and compare.
        allow_augmentation_skip: cache through Random* augmentation layers (inference mode).
        model_path: where the model came from (recorded, and used in rebuild hints).
        progress: wraps the batch iterator (e.g. `reuse.core.report.track`); None: plain.
        augment, views: also store `views` augmented views of every row (an `--augment` spec
            without mixup/cutmix), in the same pass: `views/<tap>` of shape (K, N, *shape).
            `finetune` trains epoch e on view e mod K and validates on the clean features.
        image_shape: (H, W, C) that flat rows are viewed as for image augmentations.
        seed: seeds the views; view k of the rows at offset o depends on (seed, o, k) only,
            so `resume` gives the same file as an uninterrupted run.
        dtype: "float32" (default) or "float16": how the features are stored (float16 halves
            the file; the reader hands float32 to training either way).
        mixed_precision: "float16" or "bfloat16": run the layers below the taps in that
            precision (`reuse.surgery.precision`); the fingerprint is the float32 model's.
        input_views: with `views`, also store the K augmented views of the raw input rows
            (`input_views`, shape (K, N, *model input shape), float32): the stages that
            train the lowest reused layers then train from the cache too, with no
            augmentation on the fly. Costs K times the input's size on disk. Default False.
        shard: (i, n): cache only shard i of n, the contiguous rows
            `reuse.cache.shards.shard_range(len(data), i, n)`, into `output` as a part file
            (fingerprint and data identity of the whole cache); join the parts with
            `reuse.cache.shards.merge_parts`. The views of a shard are drawn per shard.

    Returns:
        A CacheResult.

    Raises:
        CutError, LayerNotFound: a tap is not a valid cut point.
        UsageError: no frozen layers and no taps; augmentation layers; bad options.
        DataError: empty data, or an input shape that does not fit the model.
        CacheMismatch: `resume` with a partial file made with other settings, or a failed
            spot check.
    """

    from reuse.core import report
    from reuse.surgery import cuts

    started = time.perf_counter()
    check_options(output, batch_size=batch_size, verify=verify, compression=compression)
    spec = views_spec(augment, views, input_views)
    if isinstance(model, (str, os.PathLike)):
        from reuse.formats.model_io import load_model

        model_path = model_path or str(model)
        model = load_model(model)
    from reuse.data.dataset import as_dataset

    data = as_dataset(data)
    if spec is None and image_shape is not None:
        raise UsageError(
            "--image-shape tells --augment how to view flat rows as images, and no --augment "
            "was given",
            "add --augment SPEC --views K (e.g. --augment digits --views 8), or drop --image-shape",
        )
    if dtype not in STORAGE_DTYPES:
        raise UsageError(
            f"--dtype must be float32 or float16. Received: {dtype!r}",
            "use --dtype float16 to store the features at half the size",
        )
    comp, comp_opts, comp_spec = parse_compression(compression)
    if len(model.inputs) != 1:
        raise UsageError(
            f"model {model.name} has {len(model.inputs)} inputs",
            "cache-features handles single-input models",
        )
    whole = data
    if shard is not None:
        from reuse.cache.shards import shard_range

        start, stop = shard_range(len(whole), *shard)
        data = whole.subset(np.arange(start, stop), f"shard {shard[0]}/{shard[1]}")
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
        report.info(f"note: {note}")

    from reuse.data.shapes import fit_model

    fit = fit_model(data.input_shape, model, source=getattr(data, "path", "data"))
    adapter, adapter_name = (fit.apply if fit.changes else None), fit.kind
    fp = fingerprint(model, paths, graph)  # before any dtype policy changes the configs
    if mixed_precision:
        from reuse.surgery.precision import set_mixed_precision

        set_mixed_precision(model, mixed_precision)
    bottom = cuts.bottom_model(model, paths, graph)
    # The forward pass runs on groups of batches (fewer calls into TensorFlow); rows are still
    # chunked to the batch size in the file.
    row_bytes = 4 * int(np.prod(data.input_shape)) or 4
    step = batch_size * max(1, min(COMPUTE_ROWS, COMPUTE_BYTES // row_bytes) // batch_size)
    forward = forward_pass(bottom, min(step, n))
    refs = [graph.by_path(p).outputs[0] for p in paths]
    shapes = {p: tuple(int(d) for d in r.shape[1:]) for p, r in zip(paths, refs, strict=False)}
    dtypes = {
        p: (str(r.dtype) if str(r.dtype) in ("float16", "float32", "float64") else "float32")
        for p, r in zip(paths, refs, strict=False)
    }
    if dtype == "float16":
        dtypes = dict.fromkeys(paths, "float16")
    attrs = _plan_attrs(
        model, paths, fp, whole, batch_size, comp_spec, adapter_name, shapes, dtypes, model_path
    )
    attrs["mixed_precision"] = mixed_precision or "none"
    if shard is not None:
        from reuse.cache.shards import shard_attrs

        attrs.update(shard_attrs(*shard, start, stop, len(whole)), rows=n)
    augmenter = None
    if spec:
        from reuse.augment.pipeline import build_augmenter, infer_value_range
        from reuse.augment.spec import implied_image_shape

        model_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        # image rows flattened for the model are augmented as the images they were
        image_shape = image_shape or implied_image_shape(data.input_shape, model_shape)
        probe = data.batches(min(n, 1024), start=0)
        value_range = infer_value_range(next(iter(probe))[1])
        augmenter = build_augmenter(spec, model_shape, image_shape, int(seed), value_range)
        attrs.update(
            augment=spec.canonical(),
            views=int(views),
            augment_seed=int(seed),
            image_shape=json.dumps(list(image_shape) if image_shape else None),
            input_views=bool(input_views),
        )

    out = Path(output)
    if augmenter is not None and comp is None:
        check_views_fit(out, int(views), n, shapes, dtypes, model if input_views else None)
    part = part_path(out)
    start_row = 0
    if resume and part.exists():
        start_row = resumable_rows(part, attrs)
        report.info(f"Resuming {part.name} at row {start_row:,} of {n:,}")
    elif part.exists():
        report.info(
            f"note: starting over; an unfinished cache {part} from an earlier run is replaced (--resume continues it)"
        )
        part.unlink()
    elif resume:
        report.info(f"note: no unfinished cache {part.name} to resume; starting from the first row")
    delay = float(os.environ.get(_DELAY_ENV, "0") or 0)
    try:
        if start_row == 0:
            create_part(part, attrs, data, paths, shapes, dtypes, batch_size, comp, comp_opts)
            if augmenter is not None:
                create_views(
                    part, paths, shapes, dtypes, int(views), n, batch_size, comp, comp_opts
                )
                if input_views:
                    create_input_views(part, model, int(views), n, batch_size, comp, comp_opts)
        with open_part(part) as f:
            sets = [f[tap_dataset_name(p)] for p in paths]
            batches = data.batches(step, start=start_row)
            total = (n - start_row + step - 1) // step
            if progress is not None:
                batches = progress(batches, total=total, description="caching features")
            writer = BatchWriter(f, sets)
            try:
                for offset, xb, _ in prefetch(batches):
                    if adapter is not None:
                        xb = adapter(xb)
                    if augmenter is not None:
                        # Views first: rows_done moves on with the clean features below.
                        for k in range(int(views)):
                            augmenter.reseed(offset, k)
                            view = np.asarray(augmenter(xb)[0])
                            if input_views:
                                f[INPUT_VIEWS_DATASET][k, offset : offset + len(xb)] = view
                            outs = forward(view)
                            for p, view_rows in zip(paths, outs, strict=True):
                                f[views_dataset_name(p)][k, offset : offset + len(xb)] = view_rows
                    writer.put(offset, forward(xb))
                    # Pages of a memory-mapped input already read are dropped from RSS.
                    release_pages(getattr(data, "x", None), int(data.indices[offset + len(xb) - 1]))
                    if delay:
                        time.sleep(delay)
            finally:
                writer.close()
        verified = (
            spot_check(part, model, data, paths, verify, adapter, forward=forward) if verify else 0
        )
        with open_part(part) as f:
            if int(f.attrs["rows_done"]) != n:
                raise CacheIncomplete(
                    f"{part} holds {int(f.attrs['rows_done'])} of {n} rows",
                    "run the command again with --resume",
                )
            # A digest of the values as written: reading them back checks it (layout.digest).
            names = [d for p in paths for d in (tap_dataset_name(p), views_dataset_name(p))]
            for name in [*names, INPUT_VIEWS_DATASET]:
                if name in f:
                    f[name].attrs[DIGEST_ATTR] = np.uint32(digest(f[name]))
            f.attrs["complete"] = True
        from reuse.core.atomic import commit

        commit(part, out)  # fsync, rename, fsync the folder
    except KeyboardInterrupt as err:
        if part.exists() and not isinstance(err, Interrupted):
            raise Interrupted(
                f"interrupted; the rows written so far are kept in {part}",
                "run the same command with --resume to continue",
            ) from err
        raise
    except BaseException as err:
        # Any other failure (bad rows, a full disk, a failed spot check) removes the partial
        # file: it must not look resumable and good, nor fill a full disk.
        part.unlink(missing_ok=True)
        from reuse.core.atomic import disk_error

        renamed = disk_error(err, out)
        if renamed is None:
            raise
        raise renamed from err
    if mixed_precision:
        set_mixed_precision(model, None)  # the caller's model computes in float32 again
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
        augment=spec.canonical() if spec else None,
        views=int(views) if spec else 0,
    )


def views_spec(augment, views, input_views: bool = False):
    """The AugmentSpec of the views, or None; refuses views without a spec and vice versa, and
    input views (`--input-views`) without both."""
    if input_views and not (augment and views):
        raise UsageError(
            "--input-views stores augmented views of the raw rows: it needs --augment SPEC --views K",
            "add e.g. --augment digits --views 8, or drop --input-views",
        )
    if not augment and not views:
        return None
    if not augment or not views or int(views) < 1:
        raise UsageError(
            f"augmented views need both --augment and --views K >= 1. Received: augment={augment!r}, views={views}",
            "e.g. --augment digits --views 8",
        )
    from reuse.augment.spec import parse_augment

    spec = parse_augment(augment)
    if not spec:
        raise UsageError(
            f"--views {views} stores augmented views, and --augment {augment} turns augmentation off",
            "give an augmentation, e.g. --augment digits --views 8, or drop --views",
        )
    if spec.batch_level:
        per_row = spec.per_sample()
        raise UsageError(
            f"--augment {spec.canonical()}: mixup and cutmix mix the rows of a training batch, so they cannot be cached as views",
            f"cache --augment {per_row.canonical()} and keep mixup in finetune's --augment"
            if per_row
            else "cache a per-row augmentation (e.g. --augment digits) and keep mixup in finetune's --augment",
        )
    return spec
