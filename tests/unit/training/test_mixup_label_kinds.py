"""mixup / cutmix on labels that are not k > 2 classes.

Two classes (0/1 labels get a `dense:1:sigmoid` head) trained with categorical cross-entropy
on a single unit: the loss was 0.0 on every batch and nothing was learned, silently.
Multi-label 0/1 columns asked the user to "pass num_classes to build_augmenter"; regression
targets said the same. Now sigmoid heads mix their 0/1 targets under binary cross-entropy and
regression targets are refused in one line.
"""

import numpy as np
import pytest

from reuse.core.errors import UsageError
from tests.helpers import mlp


def _tune(y, augment="mixup"):
    import reuse

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 64)).astype("float32")
    y = y(x)
    return reuse.finetune(
        mlp(n_in=64, hidden=2, units=8),
        (x, y),
        val=(x[:10], y[:10]),
        epochs=2,
        seed=0,
        augment=augment,
        image_shape=(8, 8, 1),
    )


@pytest.mark.parametrize("augment", ["mixup", "cutmix"])
def test_two_classes_train_with_binary_cross_entropy(augment):
    result = _tune(lambda x: (x[:, 0] > 0.5).astype("int64"), augment)
    assert result.model.outputs[0].shape[-1] == 1
    # categorical cross-entropy on one unit is identically 0
    assert 0.3 < result.metrics["loss"] < 2 and 0.3 < result.metrics["val_loss"] < 2


def test_multi_label_columns_mix_their_targets():
    result = _tune(lambda x: (x[:, :3] > 0.5).astype("int64"))
    assert result.model.outputs[0].shape[-1] == 3
    assert 0.3 < result.metrics["loss"] < 2


def test_regression_targets_are_refused_in_one_line():
    with pytest.raises(UsageError) as err:
        _tune(lambda x: x[:, :3].sum(1))
    assert "regression targets" in err.value.message
    assert "drop mixup and cutmix" in err.value.hint
