"""Ways to run the frozen pass in shards: one shard in this process (`cache_shard`, for
`--shard I/N` on a job array), or every shard on Ray (`cache_with_ray`, `--engine ray`).

The frozen pass needs no communication between workers, so a shard is simply
`reuse.cache.writer.cache_features(..., shard=(i, n))` writing its own fingerprinted part
file, and `reuse.cache.shards.merge_parts` joins the parts into one cache of HDF5 virtual
datasets. On Ray, the shards are the rows of a Ray Data dataset and `map_batches` runs them on
a pool of actors of a callable class (`ShardWorker`): each actor loads the model and opens the
data once, then writes the parts it is given. Ray starts embedded on this machine unless an
address (`--ray-address`, e.g. `ray://head:10001` or `auto`) joins a running cluster, whose
nodes must see the model, the data and the output folder at the same paths.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from reuse.cache.shards import merge_parts, shard_file, shard_range
from reuse.core.errors import ReuseError, UsageError

RAY_HINT = "pip install 'keras-reuse[ray]' (or pip install 'ray[data]'), or use --engine local"


def probe_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """Check that something listens at a `--ray-address` of the form `host:port` or
    `ray://host:port` before `ray.init` joins it: Ray 2.60 waits for minutes on an address
    where nothing listens. `auto` and None (Ray finds or starts the cluster) are not probed.

    Raises:
        ReuseError: the TCP connection to host:port fails within `timeout` seconds.
    """
    import socket

    if not address or address == "auto":
        return
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return  # no port to probe: Ray parses (and refuses) the address itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ReuseError(
            f"nothing answers at the Ray address {address} ({reason})",
            f"start the cluster there (ray start --head --port={port}) or check the address; "
            "--ray-address auto joins the cluster running on this machine",
        ) from err


def ray_connection_error(address: str | None, err: Exception) -> ReuseError:
    """The one-line error for a `ray.init(address=...)` that cannot join the cluster.

    A Ray cluster may use token authentication (Ray 2.60's `ray start` turns it on when
    ~/.ray/auth_token exists or RAY_AUTH_MODE=token), and Ray sends the token to an address
    given explicitly only when `RAY_AUTH_MODE=token` is set (with `auto` it finds a local
    cluster's token itself): the hint says so.
    """
    import os

    where = address or "auto"
    first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
    detail = "" if not first or first.startswith("Failed to connect") else f" ({first})"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        hint = (
            f"check that the cluster runs (ray status --address {where}) and that its token is "
            "in RAY_AUTH_TOKEN or ~/.ray/auth_token"
        )
    else:
        hint = (
            f"check that the cluster runs (ray status --address {where}); a cluster with token "
            "authentication also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
            "~/.ray/auth_token"
        )
    return ReuseError(f"cannot join the Ray cluster at {where}{detail}", hint)


def cache_shard(model, data, output, index: int, count: int, *, resume: bool = False, **options):
    """Cache shard `index` of `count` of `data` into `shard_file(output, index, count)`.

    With `resume`, a finished part made from the same model (fingerprint) and data is kept
    as it is (returns None), and an unfinished one continues where it stopped. `options` go
    to `cache_features` (taps, batch_size, compression, verify, ...).

    Returns:
        The CacheResult of the part, or None when `resume` kept a finished part.
    """
    from reuse.cache.writer import cache_features

    part = shard_file(output, index, count)
    if resume and _finished_part(part, model, data, index, count):
        return None
    return cache_features(model, data, part, shard=(index, count), resume=resume, **options)


def _finished_part(part: Path, model, data, index: int, count: int) -> bool:
    import h5py

    from reuse.cache.fingerprints import fingerprint
    from reuse.cache.layout import attr_value

    if not part.exists():
        return False
    try:
        with h5py.File(part, "r") as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
    except OSError:
        return False
    if not attrs.get("complete") or attrs.get("shard") != f"{index}/{count}":
        return False
    start, stop = shard_range(len(data), index, count)
    same_data = attrs.get("data_identity") == json.dumps(
        data.identity, sort_keys=True, default=str
    ) and (int(attrs.get("shard_start", -1)), int(attrs.get("shard_stop", -1))) == (start, stop)
    try:
        same_model = fingerprint(model, json.loads(attrs["taps"]))["fingerprint"] == attrs.get(
            "fingerprint"
        )
    except Exception:  # noqa: BLE001 - taps the model lacks: the part is not this model's
        same_model = False
    return same_data and same_model


def require_ray():
    """The `ray` module (with Ray Data).

    Raises:
        UsageError: ray is not installed, with how to install it.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray (with Ray Data), which is not installed", RAY_HINT
        ) from None
    return ray


class ShardWorker:
    """The callable class Ray Data's `map_batches` runs on each actor: it loads the model and
    opens the data once, then caches every shard of the batches it receives.

    Args:
        model_path: the model file (read with `reuse.formats.model_io.load_model`).
        data_options: a `reuse.data.DataOptions` (what `--data` and its options name).
        output: the joined cache's path; parts go beside it (`shard_file`).
        count: the number of shards.
        threads: TensorFlow's intra- and inter-op threads in this actor (None: TF's default).
        resume, unsafe, options: as for `cache_shard` and `load_model`.
    """

    def __init__(
        self,
        model_path,
        data_options,
        output,
        count,
        threads=None,
        resume=False,
        unsafe=False,
        options=None,
    ):
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        from reuse.formats.model_io import load_model

        started = time.perf_counter()
        self.model = load_model(model_path, unsafe=unsafe)
        self.data = data_options.load()
        self.output, self.count, self.resume = output, count, resume
        self.options = dict(options or {})
        self.load_seconds = time.perf_counter() - started

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        shards, rows, seconds, kept = [], [], [], []
        for index in np.asarray(batch["shard"]).tolist():
            started = time.perf_counter()
            result = cache_shard(
                self.model,
                self.data,
                self.output,
                int(index),
                self.count,
                resume=self.resume,
                **self.options,
            )
            shards.append(int(index))
            rows.append(0 if result is None else int(result.rows))
            kept.append(result is None)
            seconds.append(time.perf_counter() - started)
        return {
            "shard": np.array(shards),
            "rows": np.array(rows),
            "kept": np.array(kept),
            "seconds": np.array(seconds),
            "pid": np.full(len(shards), os.getpid()),
        }


def cache_with_ray(
    model_file,
    data_options,
    output,
    *,
    workers: int = 2,
    shards: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    resume: bool = False,
    unsafe: bool = False,
    **options,
) -> dict:
    """Cache features on Ray: `shards` parts written by `workers` actors, then joined.

    Args:
        model_file: the model file; every actor loads it once.
        data_options: a `reuse.data.DataOptions`; every actor opens the data with it.
        output: the joined cache (.h5); the parts are `shard_file(output, i, shards)` beside it.
        workers: actors (each one CPU, or `threads` CPUs); default 2.
        shards: parts to cut the rows into (default: `workers`). More shards than workers
            balance uneven nodes and make `resume` lose less.
        threads: TensorFlow threads per actor (None: TF's default, which oversubscribes the
            CPUs when several actors share a host).
        address: a Ray cluster to join (`ray.init(address=...)`); None: an embedded local Ray.
        resume: keep the finished parts (same model and data), continue unfinished ones.
        options: for `cache_features` (taps, batch_size, compression, verify, ...).

    Returns:
        {"path", "rows", "parts", "taps", "fingerprint", "shards_run", "shards_kept",
        "seconds", "ray_start_seconds", "actors", "shard_seconds"}; `shard_seconds` lists
        (shard, seconds, actor pid) of the work inside the actors (model loading excluded).

    Raises:
        UsageError: Ray missing, or `workers` / `shards` < 1.
        CacheMismatch, CacheIncomplete: as `merge_parts`.
    """
    ray = require_ray()
    shards = shards or workers
    if workers < 1 or shards < 1:
        raise UsageError(
            f"--workers and --shards must be >= 1. Received: workers={workers}, shards={shards}",
            "e.g. --workers 4 --shards 16",
        )
    started = time.perf_counter()
    own = not ray.is_initialized()
    import logging

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if own:
        env = {
            "env_vars": {
                k: os.environ[k] for k in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL") if k in os.environ
            }
        }
        probe_ray_address(address)
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env=env,
            )
        except ConnectionError as err:
            raise ray_connection_error(address, err) from err
    ray_start = time.perf_counter() - started
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        cpus = int(threads or 1)
        table = ray.data.from_items(
            [{"shard": i} for i in range(shards)], override_num_blocks=shards
        )
        with warnings.catch_warnings():
            # max_restarts goes through ray_remote_args, which Ray 2.60 calls deprecated.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            done = table.map_batches(
                ShardWorker,
                fn_constructor_kwargs={
                    "model_path": str(Path(model_file).resolve()),
                    "data_options": data_options,
                    "output": str(Path(output).resolve()),
                    "count": shards,
                    "threads": threads,
                    "resume": resume,
                    "unsafe": unsafe,
                    "options": options,
                },
                batch_size=1,
                concurrency=min(workers, shards),
                num_cpus=cpus,
                max_restarts=0,  # a failed shard fails the call; --resume redoes it
            ).take_all()
    finally:
        if own:
            ray.shutdown()
    joined = merge_parts([shard_file(output, i, shards) for i in range(shards)], output)
    joined.update(
        shards_run=sorted(int(r["shard"]) for r in done if not r["kept"]),
        shards_kept=sorted(int(r["shard"]) for r in done if r["kept"]),
        actors=len({int(r["pid"]) for r in done}),
        shard_seconds=[(int(r["shard"]), float(r["seconds"]), int(r["pid"])) for r in done],
        seconds=time.perf_counter() - started,
        ray_start_seconds=ray_start,
    )
    return joined
