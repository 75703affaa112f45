"""Fine-tuning a model whose reused layers are all trainable says so, once."""

import pytest

from tests.helpers import classification_data, mlp

HINT = "no reused layer is frozen"


def _run(model, capsys, **options):
    import reuse

    x, y = classification_data(n=30)
    reuse.finetune(model, (x, y), epochs=1, seed=0, **options)
    return capsys.readouterr().err


def test_hint_when_every_reused_layer_trains(capsys):
    err = _run(mlp(), capsys)
    assert err.count(HINT) == 1
    assert "reuse freeze" in err and "--unfreeze gradual" in err


def test_no_hint_when_something_is_frozen(capsys):
    model = mlp()
    model.get_layer("hidden1").trainable = False
    assert HINT not in _run(model, capsys)


@pytest.mark.slow
def test_no_hint_under_gradual_unfreezing(capsys):
    assert HINT not in _run(mlp(), capsys, unfreeze="gradual")
