"""`reuse inspect`: describe a model, a weight-only file, a SavedModel folder or a feature cache.

`describe` routes a path by its kind (`reuse.formats.paths.classify`) to one describer:
`fast` (layer list of a `.keras` / `.h5` file without TensorFlow), `summary` (rows of a loaded
model), `savedmodel`, `weights` or `cache`. Each returns an `Inspection` (`result`).
"""

from reuse.inspection.describe import inspect, inspect_loaded, inspect_model
from reuse.inspection.result import MODEL_COLUMNS, Inspection

__all__ = ["MODEL_COLUMNS", "Inspection", "inspect", "inspect_loaded", "inspect_model"]
