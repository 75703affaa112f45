"""The feature cache: HDF5 files of what the frozen part of a model computes.

`cache_features` runs the layers below one or more taps (valid cut points, see
`reuse.surgery.cuts`) once over a data set, streaming batches into one HDF5 file; `finetune`
then trains what is above a tap from the file (`open_cache`) instead of running the frozen
layers every epoch.

Modules: `layout` (names, marks, compression), `fingerprints` (what the cache depends on),
`writer` (`cache_features`, resume), `streaming` (batched forward pass, background writes),
`verify` (spot check against the live model), `reader` (`open_cache`, `FeatureCache`),
`shards` (a cache made in shards, joined by HDF5 virtual datasets: `merge_parts`), `engines`
(one shard per job: `cache_shard`; every shard on Ray Data actors: `cache_with_ray`).
`reuse inspect feats.h5` describes a cache through `reuse.inspection.cache`.

File layout (format 1):

    features/<tap>      one dataset per tap, rows chunked to the batch size; `/` in nested
                        names is written `%2F` (the real name is the dataset's `tap` attribute)
    labels              the (remapped) labels, when the data has them
    indices             int64 source row index of each cached row

Root attributes: `reuse_feature_cache` (format version), `reuse_version`, `fingerprint`,
`fingerprint_architecture`, `fingerprint_weights`, `layer_digests` (JSON: per-layer config and
weight digests, to say what differs), `taps` (JSON list), `tap_datasets` (JSON), `tap_shapes`
(JSON), `tap_dtypes` (JSON), `data_identity` (JSON: path, size, sha256, selection),
`class_map` (JSON), `rows`, `rows_done`, `batch_size`, `compression`, `input_adapter`,
`model_name`, `model_path`, `created` (the only timing attribute), and `complete`, written last.
A shard's part adds `shard` ("i/n"), `shard_start`, `shard_stop`, `total_rows`; a joined
cache adds `parts` (JSON: the part files, relative to it) and holds virtual datasets.

Trust: the file is written as `.<name>.part.h5` beside the output and renamed when complete;
`rows_done` is updated after each flushed forward call (a group of whole batches) so
`resume=True` continues a killed run and, because batches are the same, yields the same
content as an uninterrupted run; a spot check (`verify`) recomputes random rows through the
live model; `open_cache` refuses an incomplete file or one whose fingerprint differs from the
model it is used with.
"""

from reuse.cache.fingerprints import fingerprint
from reuse.cache.layout import (
    CACHE_MARK,
    DEFAULT_COMPRESSION,
    FORMAT_VERSION,
    is_cache,
    parse_compression,
    part_path,
    tap_dataset_name,
)
from reuse.cache.reader import FeatureCache, open_cache
from reuse.cache.writer import CacheResult, cache_features

__all__ = [
    "CACHE_MARK",
    "DEFAULT_COMPRESSION",
    "FORMAT_VERSION",
    "CacheResult",
    "FeatureCache",
    "cache_features",
    "fingerprint",
    "is_cache",
    "open_cache",
    "parse_compression",
    "part_path",
    "tap_dataset_name",
]
