"""A real third-party model: facenet-pytorch 2.6.0's MTCNN O-Net state dict (`data/onet.pt`)
imported into the Keras O-Net of examples/mtcnn_onet.py matches torch's outputs to 1e-5.
Skips when facenet-pytorch (installed with --no-deps: the weights only) or torch is absent."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.weight_sources import needs_torch

sys.path.insert(0, str(ROOT / "examples"))
import mtcnn_onet  # noqa: E402

ONET = mtcnn_onet.onet_weights_path()
pytestmark = [
    needs_torch,
    pytest.mark.skipif(ONET is None, reason="facenet-pytorch is not installed"),
]


def test_onet_state_dict_imports_and_matches_torch(tmp_path):
    from reuse.weights.importer import import_weights

    x = mtcnn_onet.check_data()
    want = mtcnn_onet.torch_outputs(ONET, x)
    rep = import_weights(
        ONET,
        mtcnn_onet.build_keras_onet(),
        strict=True,
        check_inputs=x,
        check_outputs=want,
        tolerance=1e-5,
    )
    assert rep.counts()["assigned"] == 21 and rep.check["passed"]
    assert rep.check["max_abs_diff"] < 1e-5
    prelu = next(r for r in rep.tensors if r["name"] == "prelu1.weight")
    assert prelu["target_shape"] == [1, 1, 32]
    # Forcing PyTorch's C·H·W reorder after the Permute breaks it, and the error says what to try.
    from reuse.core.errors import WeightImportError

    with pytest.raises(WeightImportError, match="differ") as err:
        import_weights(
            ONET,
            mtcnn_onet.build_keras_onet(),
            check_inputs=x,
            check_outputs=want,
            tolerance=1e-5,
            flatten_order="nchw",
        )
    assert "--flatten-order auto or none" in err.value.hint
    assert np.isfinite(want).all()
