"""`reuse cache-features`: run the frozen part of a model once and stream its outputs to HDF5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reuse.cli import data_options as D
from reuse.cli import training_options as T
from reuse.cli.common import JsonOpt, ModelArg, OutputKeyOpt, UnsafeOpt, command, seed_option

SeedOpt = seed_option("the rows --limit and --per-class pick, and the augmented --views")


@command
def cache_features_command(
    model: ModelArg = None,
    parts: Annotated[
        list[str] | None,
        typer.Argument(
            help="With --merge: the part files to join (MODEL is then the first part).",
            show_default=False,
        ),
    ] = None,
    data: D.DataOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Layer(s) to cache, comma-separated (default: the top frozen layer)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HDF5 file to write (default: <model>.features.h5)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", help="Rows per forward pass and per HDF5 chunk.")
    ] = 256,
    compression: Annotated[
        str,
        typer.Option(
            "--compression", help="none, lzf or gzip[:level] (none: fastest to read back)."
        ),
    ] = "none",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run with the same options.")
    ] = False,
    verify: Annotated[
        int,
        typer.Option(
            "--verify", help="Recompute N random rows through the model and compare (0: skip)."
        ),
    ] = 3,
    allow_augmentation_skip: Annotated[
        bool,
        typer.Option(
            "--allow-augmentation-skip",
            help="Cache through Random* augmentation layers (they run in inference mode: no augmentation).",
        ),
    ] = False,
    labels: D.LabelsOpt = None,
    x_key: D.XKeyOpt = None,
    y_key: D.YKeyOpt = None,
    label_col: D.LabelColOpt = None,
    image_size: D.ImageSizeOpt = None,
    split: D.SplitOpt = None,
    classes: D.ClassesOpt = None,
    per_class: D.PerClassOpt = None,
    limit: D.LimitOpt = None,
    seed: SeedOpt = None,
    augment: T.ViewsAugmentOpt = None,
    views: Annotated[
        int,
        typer.Option(
            "--views",
            metavar="K",
            help="With --augment: store K augmented views of every row besides the clean one, "
            "in the same pass; finetune --augment SPEC trains epoch e on view e mod K.",
        ),
    ] = 0,
    input_views: Annotated[
        bool,
        typer.Option(
            "--input-views",
            help="With --views: also store the K augmented views of the raw input rows, so the "
            "stages that train the lowest reused layers train from the cache too, with no "
            "augmentation on the fly. Costs K times the input's size on disk.",
        ),
    ] = False,
    image_shape: T.ImageShapeOpt = None,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="float32, or float16: store the features at half the size (training reads "
            "them back as float32).",
        ),
    ] = "float32",
    mixed_precision: T.MixedPrecisionOpt = None,
    output_key: OutputKeyOpt = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="Cache only shard I of N (contiguous rows) into <output stem>.part-I-of-N.h5, "
            "for job arrays; join the parts with --merge.",
        ),
    ] = None,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Join the part files given as arguments into -o (HDF5 virtual datasets: no copy).",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (this process) or ray (shards on Ray Data actors, each loading the model once).",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --engine ray: join this Ray cluster (e.g. auto, ray://head:10001); default: a local Ray.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="With --engine ray: actors running shards at once.")
    ] = 2,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards", help="With --engine ray: parts to cut the rows into (default: --workers)."
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="With --engine ray: TensorFlow threads (and CPUs reserved) per actor.",
        ),
    ] = None,
    unsafe: UnsafeOpt = False,
    json_flag: JsonOpt = False,
) -> None:
    """Compute the frozen layers once over the data and cache their outputs in HDF5.

    Streams the data in batches, so memory does not grow with the data set. The file records
    a fingerprint of the layers up to the taps, so `finetune` refuses a cache made with
    another model. Interrupted runs continue with --resume; --verify spot-checks rows.

    Examples:

        reuse cache-features frozen.keras --data train.npz -o feats.h5

        reuse cache-features frozen.keras --data train.npz --at hidden2,hidden3,hidden4

        reuse freeze base.keras --upto hidden2 | reuse cache-features --data train.npz

        reuse cache-features frozen.keras --data train.npz --at hidden1,hidden2 --augment digits --views 8 --image-shape 28,28,1

        reuse cache-features frozen.keras --data train.npz --dtype float16

        reuse cache-features base.keras --data train.npz --at hidden1,hidden3,hidden5 --augment digits --views 8 --image-shape 28,28,1 --input-views

        reuse cache-features frozen.keras --data train.npz -o feats.h5 --shard 0/4   (then 1/4, 2/4, 3/4)

        reuse cache-features --merge feats.part-*-of-00004.h5 -o feats.h5

        reuse cache-features frozen.keras --data train.npz -o feats.h5 --engine ray --workers 4 --threads 4
    """
    from reuse.cache import cache_features
    from reuse.cli.common import emit_record
    from reuse.core import record as records
    from reuse.core import report
    from reuse.core.atomic import check_output_path
    from reuse.core.naming import default_output
    from reuse.formats.model_io import load_model
    from reuse.formats.outputs import require_single_output

    if merge:
        return _merge([model, *(parts or [])] if model else list(parts or []), output, json_flag)
    if parts:
        from reuse.core.errors import UsageError

        raise UsageError(
            f"unexpected argument(s): {' '.join(parts)}",
            "pass one model; several files are for --merge PARTS... -o CACHE.h5",
        )
    if engine not in ("local", "ray"):
        from reuse.core.errors import UsageError

        raise UsageError(f"unknown --engine {engine!r}", "use --engine local or ray")
    if engine == "ray":
        from reuse.cache.engines import require_ray

        require_ray()  # before anything slow: say how to install it
    shard_spec = None
    if shard is not None:
        from reuse.cache.shards import parse_shard

        shard_spec = parse_shard(shard)
    if augment is not None or views or input_views:
        from reuse.cache.writer import views_spec
        from reuse.training.options import parse_image_shape

        augment = views_spec(augment, views, input_views).canonical()
        image_shape = parse_image_shape(image_shape) if image_shape else None
    model_path, upstream = records.resolve_input(model)
    out = output or default_output(model_path, "features", ".h5")
    from reuse.cache.writer import check_options

    check_options(out, batch_size=batch_size, verify=verify, compression=compression)
    check_output_path(out, [model_path, data])
    if data is None:
        from reuse.core.errors import UsageError

        raise UsageError(
            "no data given", "pass --data DATA (the rows to run through the frozen layers)"
        )
    data_opts = D.data_options_from(locals())
    taps = [t.strip() for t in at.split(",") if t.strip()] if at else None
    settings = dict(
        taps=taps,
        batch_size=batch_size,
        compression=compression,
        verify=verify,
        allow_augmentation_skip=allow_augmentation_skip,
        model_path=model_path,
        augment=augment,
        views=views,
        image_shape=image_shape,
        seed=seed or 0,
        input_views=input_views,
        dtype=dtype,
        mixed_precision=mixed_precision,
    )
    output_key = output_key or (upstream or {}).get("output_key")
    if engine == "ray":
        if output_key:
            from reuse.core.errors import UsageError

            raise UsageError(
                "--output-key is for --engine local",
                "export the one output first, or use --shard I/N jobs with --output-key",
            )
        if shard_spec is not None:
            from reuse.core.errors import UsageError

            raise UsageError("--shard is for --engine local", "with --engine ray, set --shards N")
        ray_options = dict(
            workers=workers,
            shards=shards,
            threads=threads,
            address=ray_address,
            resume=resume,
            unsafe=unsafe,
        )
        return _ray(model_path, data_opts, out, settings, ray_options, upstream, data, json_flag)
    dataset = data_opts.load()
    keras_model = load_model(model_path, unsafe=unsafe, output_key=output_key)
    require_single_output(keras_model)
    if shard_spec is not None:
        from reuse.cache.engines import cache_shard
        from reuse.cache.shards import shard_file

        result = cache_shard(
            keras_model, dataset, out, *shard_spec, resume=resume, progress=report.track, **settings
        )
        part = shard_file(out, *shard_spec)
        if result is None:
            report.info(f"{part} is already complete (--resume); kept")
        else:
            report.info(
                f"Cached shard {shard} ({result.rows:,} rows) to {part} in {result.seconds:.1f} s"
            )
        rec = records.make_record(
            "cache-features", upstream, model=model_path, part=part, shard=shard, data=data
        )
        emit_record(rec, json_flag, human=lambda: typer.echo(f"{part}  (shard {shard})"))
        return
    result = cache_features(
        keras_model,
        dataset,
        out,
        resume=resume,
        progress=report.track,
        **settings,
    )
    shapes = ", ".join(f"{t} {tuple(s)}" for t, s in result.shapes.items())
    report.info(
        f"Cached {result.rows:,} rows of {shapes} to {result.path} in {result.seconds:.1f} s"
        + (f" (resumed at row {result.resumed_at:,})" if result.resumed_at else "")
        + (f"; {result.verified} rows verified" if result.verified else "")
    )
    rec = records.make_record(
        "cache-features",
        upstream,
        model=model_path,
        features=result.path,
        taps=result.taps,
        rows=result.rows,
        cut=result.taps[-1],
        data=data,
        augment=result.augment,
        views=views or None,
        dtype=dtype if dtype != "float32" else None,
        mixed_precision=mixed_precision,
        input_views=input_views or None,
        output_key=output_key,
    )
    emit_record(
        rec,
        json_flag,
        human=lambda: typer.echo(
            f"{result.path}  ({result.rows:,} rows; taps: {', '.join(result.taps)})"
        ),
    )


def _merge(parts: list[str], output, json_flag: bool) -> None:
    """`--merge PARTS... -o CACHE.h5`: join shard parts into one cache (no copy)."""
    from reuse.cache.shards import merge_parts
    from reuse.cli.common import emit_record
    from reuse.core import record as records
    from reuse.core import report
    from reuse.core.errors import UsageError

    if not parts or output is None:
        raise UsageError(
            "--merge needs the part files and -o",
            "reuse cache-features --merge PARTS... -o CACHE.h5",
        )
    joined = merge_parts(parts, output)
    report.info(
        f"Joined {len(joined['parts'])} parts ({joined['rows']:,} rows) into {joined['path']}"
    )
    rec = records.make_record(
        "cache-features",
        None,
        features=joined["path"],
        taps=joined["taps"],
        rows=joined["rows"],
        cut=joined["taps"][-1],
        parts=[str(p) for p in joined["parts"]],
    )
    emit_record(
        rec, json_flag, human=lambda: typer.echo(f"{joined['path']}  ({joined['rows']:,} rows)")
    )


def _ray(model_path, data_opts, out, settings, ray_options, upstream, data, json_flag) -> None:
    """`--engine ray`: every shard on a Ray Data actor, then the parts joined."""
    from reuse.cache.engines import cache_with_ray
    from reuse.cli.common import emit_record
    from reuse.core import record as records
    from reuse.core import report

    joined = cache_with_ray(
        model_path,
        data_opts,
        out,
        **ray_options,
        **settings,
    )
    kept = f"; kept {len(joined['shards_kept'])} finished parts" if joined["shards_kept"] else ""
    report.info(
        f"Cached {joined['rows']:,} rows in {len(joined['parts'])} parts on {joined['actors']} Ray "
        f"actor(s) in {joined['seconds']:.1f} s (Ray start {joined['ray_start_seconds']:.1f} s){kept}"
    )
    rec = records.make_record(
        "cache-features",
        upstream,
        model=model_path,
        features=joined["path"],
        taps=joined["taps"],
        rows=joined["rows"],
        cut=joined["taps"][-1],
        data=data,
        augment=settings["augment"],
        views=settings["views"] or None,
        parts=[str(p) for p in joined["parts"]],
    )
    emit_record(
        rec, json_flag, human=lambda: typer.echo(f"{joined['path']}  ({joined['rows']:,} rows)")
    )
