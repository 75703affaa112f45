"""`reuse inspect` for a feature cache: its metadata, completeness and one row per dataset.

Reads the file layout that `reuse.cache` documents (root attributes, `features/<tap>`,
`labels`, `indices`) without the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reuse.cache.layout import attr_value
from reuse.inspection.result import Inspection


def inspect_cache(path: str | os.PathLike) -> Inspection:
    """Describe a cache for `reuse inspect feats.h5`: metadata, completeness, one row per dataset.

    Unlike `reuse.cache.open_cache`, an incomplete cache is described too (its `status` says
    how to finish it).

    Example:
        >>> info = inspect_cache("feats.h5")
        >>> info.info["taps"], info.info["rows"], info.info["complete"]
        (['hidden2'], 60000, True)

    Args:
        path: an HDF5 feature cache (complete or not).

    Returns:
        An Inspection with kind "cache": one row per HDF5 dataset (dataset, tap, shape, dtype,
        chunks, compression, stored_bytes); `info` holds the root attributes (rows,
        rows_done, taps, fingerprint, model, data, selection, class_map, batch_size,
        compression, reuse_version, created; for a cache of augmented views also augment,
        views, augment_seed, image_shape, input_views).

    Raises:
        OSError: h5py cannot open the file.
    """
    import h5py

    p = Path(path)
    rows = []
    with h5py.File(p, "r") as f:
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                rows.append(
                    {
                        "dataset": name,
                        "tap": attr_value(obj.attrs.get("tap", "")) or None,
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
    if attrs.get("views"):  # an augmented cache: what finetune's --augment must match
        image_shape = json.loads(attrs.get("image_shape", "null") or "null")
        info.update(
            augment=attrs.get("augment"),
            views=int(attrs["views"]),
            augment_seed=int(attrs.get("augment_seed", 0)),
            image_shape=",".join(map(str, image_shape)) if image_shape else None,
            input_views=bool(attrs.get("input_views", False)),
        )
    if not complete:
        info["status"] = "INCOMPLETE: finish it with `reuse cache-features ... --resume`"
    return Inspection(
        kind="cache",
        path=str(p),
        columns=["dataset", "tap", "shape", "dtype", "chunks", "compression", "stored_bytes"],
        rows=rows,
        info=info,
    )
