"""Read a feature cache: `open_cache` checks it is complete and fits the model, `FeatureCache` reads it.

A cache is refused when it is unfinished (CacheIncomplete: resume it), not a cache, lacks a
requested tap, or was made from another model: the model's fingerprint over the cache's taps
(`reuse.cache.fingerprints`) must equal the stored one, and the error says whether the tap
names, the architecture or the weights differ, with the command that rebuilds it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from reuse.cache.fingerprints import fingerprint
from reuse.cache.layout import (
    CACHE_MARK,
    DIGEST_ATTR,
    INPUT_VIEWS_DATASET,
    attr_value,
    digest,
    part_path,
    tap_dataset_name,
    views_dataset_name,
)
from reuse.cache.verify import spot_check
from reuse.core.errors import CacheIncomplete, CacheMismatch, DataError
from reuse.formats.paths import hdf5_reason


class FeatureCache:
    """A complete feature cache, opened for reading (use `open_cache`).

    Example:
        >>> cache = open_cache("feats.h5", model=model)
        >>> x = cache.array(cache.taps[-1]); y = cache.labels

    Attributes:
        path: the file.
        taps: the full tap paths, from the input up.
        fingerprint: the model fingerprint it was made with (sha256 hex).
        data_identity: the source data (path, size, sha256, selection).
        class_map: {original label: new label} when classes were remapped, else None.
        rows: cached rows (N).
        batch_size: rows per HDF5 chunk (and per forward pass when it was written).
        model_path: the model's path when it was recorded, else "".
    """

    def __init__(self, path: Path, handle):
        self.path = path
        self._f = handle
        a = handle.attrs
        self.taps: list[str] = json.loads(attr_value(a["taps"]))
        self.fingerprint: str = attr_value(a["fingerprint"])
        self.data_identity: dict = json.loads(attr_value(a["data_identity"]))
        cm = json.loads(attr_value(a.get("class_map", "null")))
        self.class_map: dict | None = {int(k): v for k, v in cm.items()} if cm else None
        self.rows: int = int(a["rows"])
        self.batch_size: int = int(a["batch_size"])
        self.model_path: str = attr_value(a.get("model_path", ""))
        # The model this cache was opened for (open_cache's model_path): rebuild hints name it.
        self.opened_for: str | None = None

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
        """All root attributes as plain Python values."""
        return {k: attr_value(v) for k, v in self._f.attrs.items()}

    def dataset(self, tap: str):
        """The h5py dataset of a tap (lazy; slice it to read rows)."""
        name = self._tap_name(tap)
        return self._f[tap_dataset_name(name)]

    def array(self, tap: str) -> np.ndarray:
        """All rows of a tap, in memory: shape (N, *shape(tap)).

        Raises:
            CacheMismatch: the cache has no such tap (bare layer names are accepted).
        """
        return _float32(self._checked(self.dataset(tap)))

    def shape(self, tap: str) -> tuple:
        """The per-row feature shape of a tap (without the row axis)."""
        return tuple(self.dataset(tap).shape[1:])

    @property
    def labels(self) -> np.ndarray | None:
        """The (remapped) labels, shape (N,) or (N, ...), or None when the data had none."""
        return self._f["labels"][...] if "labels" in self._f else None

    @property
    def indices(self) -> np.ndarray:
        """int64 source row index of each cached row, shape (N,)."""
        return self._f["indices"][...]

    def batches(
        self,
        tap: str,
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        seed: int | None = None,
    ):
        """(x, y) batches of a tap; shuffled by chunk and within each chunk when `shuffle`.

        Args:
            tap: the tap to read.
            batch_size: rows per batch (default: the cache's chunk, `self.batch_size`).
            shuffle: visit chunks in random order and shuffle rows within each chunk.
            seed: the shuffle's seed.

        Yields:
            (x, y): x of shape (batch_size, *shape(tap)) (the last batch may be shorter), y of
            shape (batch_size, ...) or None when the cache has no labels.
        """
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
            try:
                xb = _float32(ds[s : s + chunk])
            except OSError as err:  # a chunk that fails its fletcher32 checksum
                raise self._damaged(ds, _chunk_failure(err)) from None
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

    def check_model(self, model, model_path: str | None = None) -> None:
        """Refuse `model` unless its layers up to this cache's taps are the ones the cache was
        made from (what `open_cache(model=...)` checks); `model_path` names it in the rebuild hint.

        Raises:
            CacheMismatch: architecture, weights or tap names differ.
        """
        _check_model(self, model, model_path)

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
                    "rebuild it: "
                    + self.rebuild_command(
                        data_path=theirs.get("path"),
                        selection=theirs.get("selection") or "",
                        labels=theirs.get("labels") or "",
                    ),
                )

    def verify(self, model, data, n: int = 3, rows=None) -> int:
        """Recompute `n` random rows (or `rows`) through `model` and compare them.

        Raises:
            CacheMismatch: a row differs.
        """
        from reuse.data.shapes import fit_model

        fit = fit_model(data.input_shape, model, source=getattr(data, "path", "data"))
        adapter = fit.apply if fit.changes else None
        return spot_check(self.path, model, data, self.taps, n, adapter, rows=rows)

    @property
    def augment_spec(self) -> str | None:
        """The canonical `--augment` spec the views were made with, or None (no views)."""
        value = self._f.attrs.get("augment")
        return None if value is None else attr_value(value)

    @property
    def view_count(self) -> int:
        """K, the number of augmented views of every row (0: none)."""
        return int(self._f.attrs.get("views", 0))

    def views(self, tap: str) -> np.ndarray:
        """The augmented views of a tap, in memory: shape (K, N, *shape(tap)).

        Raises:
            CacheMismatch: no views in this cache, or no such tap.
        """
        name = self._tap_name(tap)
        if not self.view_count:
            raise CacheMismatch(
                f"{self.path} holds no augmented views", f"rebuild it: {self.rebuild_command()}"
            )
        return _float32(self._checked(self._f[views_dataset_name(name)]))

    def _checked(self, ds) -> np.ndarray:
        """All of `ds`, read through its per-chunk checksums and compared with the digest
        written with it (`reuse.cache.layout.digest`; caches written before have none).

        Raises:
            CacheMismatch: a chunk fails its checksum, or the values differ from those written.
        """
        try:
            values = ds[...]
        except OSError as err:  # a chunk that fails its fletcher32 checksum
            raise self._damaged(ds, _chunk_failure(err)) from None
        expected = ds.attrs.get(DIGEST_ATTR)
        if expected is not None and digest(values) != int(expected):
            raise self._damaged(ds, "its values changed after it was written")
        return values

    def _damaged(self, ds, why: str) -> CacheMismatch:
        return CacheMismatch(
            f"{self.path}: the features in {ds.name} are damaged ({why})",
            f"rebuild the cache: {self.rebuild_command()}",
        )

    @property
    def has_input_views(self) -> bool:
        """Whether the cache also holds augmented views of the raw input rows
        (`cache-features --input-views`)."""
        return bool(self.view_count) and INPUT_VIEWS_DATASET in self._f

    def input_views(self) -> np.ndarray:
        """The augmented views of the raw input rows, in memory: shape (K, N, *input shape).

        Raises:
            CacheMismatch: the cache holds no input views.
        """
        if not self.has_input_views:
            raise CacheMismatch(
                f"{self.path} holds no augmented views of the input rows",
                f"rebuild it: {self.rebuild_command(input_views=True)}",
            )
        return self._checked(self._f[INPUT_VIEWS_DATASET])

    @property
    def image_shape(self) -> tuple | None:
        """The (H, W, C) the views were made with (`--image-shape`), or None."""
        value = json.loads(str(self._f.attrs.get("image_shape", "null")))
        return tuple(value) if value else None

    def rebuild_command(
        self,
        model_path: str | None = None,
        augment: str | None = None,
        image_shape=None,
        input_views: bool = False,
        data_path: str | None = None,
        output_key: str | None = None,
        selection: str | None = None,
        labels: str | None = None,
    ) -> str:
        """The `reuse cache-features` command that rebuilds this cache (for error hints);
        with `augment`, one that stores augmented views made with that spec (and
        `image_shape`; with `input_views`, views of the input rows too). A cache with views
        keeps its own spec otherwise. `model_path` and `data_path` name the model and data
        to cache (default: the model it was opened for, else those it was made from);
        `output_key`: the output of a multi-output model the cache is for; `selection`: the
        data identity's row selection (default: the cache's), given back as --classes,
        --per-class, ... flags; `labels`: the separate labels file of IDX data (default: the
        cache's)."""
        import shlex

        data = data_path or self.data_identity.get("path", "DATA")
        if selection is None:
            selection = str(self.data_identity.get("selection") or "")
        if labels is None and data_path is None:
            labels = self.data_identity.get("labels")
        data_flags = f"--data {data}"
        if labels:
            if "split=" in selection:
                # Read from a folder of MNIST files, where --split picks the files (--split
                # is refused with an IDX file named directly).
                data_flags = f"--data {shlex.quote(str(Path(data).parent))}"
            else:
                data_flags += f" --labels {shlex.quote(str(labels))}"
        command = (
            f"reuse cache-features {model_path or self.opened_for or self.model_path or 'MODEL'}"
            f" {data_flags}"
            f"{_selection_flags(selection)} --at {','.join(self.taps)} -o {self.path}"
        )
        if output_key:
            command += f" --output-key {output_key}"
        spec, shape = augment or self.augment_spec, image_shape or self.image_shape
        if spec:
            from reuse.augment.spec import parse_augment

            spec = parse_augment(spec).per_sample().canonical()
            command += f" --augment {spec} --views {self.view_count or 8}"
            if shape:
                command += " --image-shape " + ",".join(str(d) for d in shape)
            if input_views or self.has_input_views:
                command += " --input-views"
        return command

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


def _float32(array: np.ndarray) -> np.ndarray:
    """Features stored as float16 (`--dtype float16`) as the float32 that training expects."""
    return array.astype(np.float32) if array.dtype == np.float16 else array


def _chunk_failure(err: OSError) -> str:
    text = str(err).strip().splitlines()[0][:120] if str(err).strip() else "read error"
    return f"a chunk fails its checksum: {text}"


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
            f"{p} is not a readable HDF5 file ({hdf5_reason(err)})",
            "rebuild the cache",
        ) from None
    try:
        if CACHE_MARK not in handle.attrs:
            raise CacheMismatch(
                f"{p} is an HDF5 file but not a reuse feature cache",
                "make one with reuse cache-features",
            )
        from reuse.cache.shards import check_parts

        check_parts(p, handle.attrs)
        if not bool(handle.attrs.get("complete", False)):
            done = int(handle.attrs.get("rows_done", 0))
            raise CacheIncomplete(
                f"{p} is incomplete ({done:,} of {int(handle.attrs.get('rows', 0)):,} rows written)",
                "run `reuse cache-features ... --resume` with the same options to finish it",
            )
        cache = FeatureCache(p, handle)
        cache.opened_for = model_path
        for t in taps or []:
            cache._tap_name(t)
        if model is not None:
            cache.check_model(model, model_path)
        return cache
    except BaseException:
        handle.close()
        raise


def _check_model(cache: FeatureCache, model, model_path: str | None) -> None:
    from reuse.core.errors import CutError, LayerNotFound
    from reuse.formats.outputs import block_output_key
    from reuse.surgery import cuts

    key = block_output_key(model)
    hint = f"rebuild it: {cache.rebuild_command(model_path, output_key=key)}"
    graph = cuts.trace(model)
    try:
        fp = fingerprint(model, cache.taps, graph)
    except LayerNotFound as err:
        # A cache of another model altogether: rebuilding it for that model would not help.
        made = cache.model_path or "another model"
        raise CacheMismatch(
            f"{cache.path} does not fit this model: tap names differ ({err.message}; the cache "
            f"holds {', '.join(cache.taps)} of {made})",
            f"train {made} with it, or cache this model's own layers: "
            f"reuse cache-features {model_path or 'MODEL'} --data DATA --at NAME -o FEATURES.h5",
        ) from None
    except CutError as err:
        raise CacheMismatch(
            f"{cache.path} does not fit this model: tap names differ ({err.message})", hint
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


#: Data identity selection keys that are `cache-features` flags (`--per-class` for per_class).
_SELECTION_FLAGS = ("classes", "per_class", "limit", "seed", "split", "label_col", "x_key", "y_key")


def _selection_flags(selection: str) -> str:
    """` --classes 1,2,3 --per-class 100 --seed 0` from a data identity's `k=v;...` selection
    (the part before any `|` tag); array names x and y, the ones guessed anyway, left out.

    >>> _selection_flags("classes=1,2,3;x_key=x;y_key=y")
    ' --classes 1,2,3'
    """
    import shlex

    flags = ""
    for item in selection.split("|")[0].split(";"):
        key, _, value = item.partition("=")
        if key not in _SELECTION_FLAGS or (key, value) in (("x_key", "x"), ("y_key", "y")):
            continue
        flags += f" --{key.replace('_', '-')} {shlex.quote(value)}"
    return flags
