"""Check an imported model: compare its outputs with the source model's on the same inputs.

    result = run_check(model, "x.npy", "y.npy", tolerance=1e-4)
    result["passed"], result["max_abs_diff"]

The reference outputs come from a `.npy` file or array, or are computed by a PyTorch module
(`torch_reference`, which moves channels-last inputs to channels-first). A model (or module)
with several outputs is compared on its outputs flattened per sample and joined in order, so
the reference for MTCNN's O-Net is `np.concatenate([b, c, a], axis=1)`.
"""

from __future__ import annotations

import os

import numpy as np

from reuse.core.errors import DataError, UsageError


def run_check(model, inputs, reference=None, *, torch_module=None, tolerance: float = 1e-4) -> dict:
    """Compare the model's outputs on `inputs` with `reference` (or a PyTorch module's).

    Example:
        >>> run_check(model, "x.npy", "y.npy")["max_abs_diff"]

    Args:
        model: the Keras model.
        inputs: array or `.npy` path of shape (n, *input_shape), channels-last.
        reference: expected outputs (array or `.npy`) of the model's output shape (n, ...);
            computed by `torch_module` when None. For several outputs: each flattened per
            sample and joined along axis 1, in the model's output order.
        torch_module: a PyTorch module run in eval mode on channels-first inputs.
        tolerance: the largest accepted max-abs difference (default 1e-4).

    Returns:
        {"rows": n, "max_abs_diff": float, "tolerance": float, "passed": bool}.

    Raises:
        DataError / UsageError: unreadable arrays, shapes that do not fit, no reference.
    """
    x = _load_array(inputs, "--check")
    if reference is None:
        if torch_module is None:
            raise UsageError(
                "--check needs --reference OUTPUTS.npy",
                "save the source model's outputs on the same inputs",
            )
        reference = torch_reference(torch_module, x)
    y = _load_array(reference, "--reference")
    out = joined_outputs(model(x.astype("float32"), training=False))
    if out.shape != y.shape:
        raise DataError(
            f"--reference has shape {y.shape} but the model's outputs have shape {out.shape}",
            "pass the source model's outputs on the --check inputs",
        )
    diff = float(np.max(np.abs(out.astype(np.float64) - y.astype(np.float64)))) if out.size else 0.0
    return {
        "rows": int(len(x)),
        "max_abs_diff": diff,
        "tolerance": float(tolerance),
        "passed": diff <= tolerance,
    }


def torch_reference(module, x: np.ndarray) -> np.ndarray:
    """A PyTorch module's outputs (eval mode, no gradients) on channels-last inputs.

    Args:
        module: a `torch.nn.Module`; it is put in eval mode.
        x: (n, features) or (n, *spatial, channels); inputs of rank > 2 are moved to
            (n, channels, *spatial) and cast to float32.

    Returns:
        The module's output as a numpy array, e.g. (n, classes).
    """
    import torch

    xt = x if x.ndim <= 2 else np.moveaxis(x, -1, 1)
    module.eval()
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(xt, dtype=np.float32)))
    return joined_outputs(out)


def joined_outputs(out) -> np.ndarray:
    """One array from a model's outputs: a single output as it is; several (a list, tuple or
    dict, in order) flattened per sample and joined along axis 1, shape (n, total)."""
    if isinstance(out, dict):
        out = list(out.values())
    if not isinstance(out, (list, tuple)):
        return np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    arrays = [np.asarray(o.numpy() if hasattr(o, "numpy") else o) for o in out]
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)


def _load_array(value, option: str) -> np.ndarray:
    if isinstance(value, (str, os.PathLike)):
        try:
            return np.load(value, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{option} {value}: no such file", "check the path") from None
        except (ValueError, OSError) as err:
            raise DataError(
                f"{option} {value} is not a readable .npy array ({err})", "save it with np.save"
            ) from None
    return np.asarray(value)
