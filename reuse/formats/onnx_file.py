"""Read an ONNX model's weights: its graph initializers, with the `onnx` package (no runtime).

`reuse import-weights model.onnx` and `reuse inspect model.onnx` read the initializers only;
the graph itself is not run or converted. Names are kept as the exporter wrote them: PyTorch's
exporter keeps the state-dict names (`fc1.weight`, `conv1.bias`) and its layouts (Gemm with
`transB=1`: (out, in); Conv: (out, in, k...)), so the PyTorch layout conversions apply. An
initializer that lost its name in export (`onnx::MatMul_123`) can be renamed with `--map`.

Initializers that are not floating point (shape and index constants) are bookkeeping, not
weights. External data files next to the model are read by `onnx.load`.

    tensors, notes = read_onnx(Path("mlp.onnx"), names_only=False)
    [(t["name"], t["shape"]) for t in tensors]   # [("fc1.weight", (7, 8)), ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reuse.core.errors import ModelLoadError

ONNX_INSTALL = "pip install 'keras-reuse[onnx]' (or: pip install onnx)"


def read_onnx(p: Path, names_only: bool) -> tuple[list[dict], list[str]]:
    """The initializers of the ONNX model `p`, and notes about the file.

    Args:
        p: an `.onnx` file.
        names_only: read names, shapes and dtypes only (values stay None).

    Returns:
        ([{"name", "shape", "dtype", "kind", "value"}], [notes]); `kind` is "weight" for
        floating-point initializers, else "bookkeeping". `reuse.formats.weight_files` makes
        them a WeightFile.

    Raises:
        ModelLoadError: the onnx package is missing, or the file is not a readable ONNX model.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelLoadError(
            f"reading the ONNX file {p} needs the onnx package", f"install it with: {ONNX_INSTALL}"
        ) from None
    try:
        model = onnx.load(str(p), load_external_data=not names_only)
    except Exception as err:  # protobuf DecodeError, missing external data, ...
        first = str(err).strip().splitlines()[0][:150] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot read {p} as an ONNX model ({first})", "check that the file is complete"
        ) from None
    tensors = []
    for init in model.graph.initializer:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type))
        value = None if names_only else np.asarray(numpy_helper.to_array(init))
        kind = "weight" if np.issubdtype(dtype, np.floating) else "bookkeeping"
        tensors.append(
            {
                "name": init.name,
                "shape": tuple(int(d) for d in init.dims),
                "dtype": str(dtype),
                "kind": kind,
                "value": value,
            }
        )
    if not tensors:
        raise ModelLoadError(
            f"{p} holds no initializers (no weights)",
            "export the model with its weights, e.g. torch.onnx.export(..., export_params=True)",
        )
    notes = [
        f"opset {', '.join(str(o.version) for o in model.opset_import)}; producer {model.producer_name or '?'}"
    ]
    return tensors, notes
