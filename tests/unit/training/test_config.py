"""`finetune --config`: reading a configuration file, its errors, and `--unfreeze top:N`."""

from __future__ import annotations

import json

import pytest

from reuse.core.errors import DataError, UsageError
from reuse.training.config import apply_config, read_config
from reuse.training.options import FinetuneOptions


def test_the_finetune_object_of_best_json_is_read_with_flag_spellings(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(
        json.dumps(
            {
                "finetune": {"lr": 0.002, "l2": 1e-5, "early-stopping": 5, "epochs": 20.0},
                "metric": "val_accuracy",
                "trials": [],
            }
        )
    )
    assert read_config(path) == {"lr": 0.002, "l2": 1e-5, "early_stopping": 5, "epochs": 20}
    assert isinstance(read_config(path)["epochs"], int)


def test_a_hand_written_file_of_options_works_too(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"optimizer": "nesterov", "image_shape": [28, 28, 1], "train_bn": true}')
    assert read_config(path) == {
        "optimizer": "nesterov",
        "image_shape": (28, 28, 1),
        "train_bn": True,
    }


@pytest.mark.parametrize(
    "content, error, message",
    [
        ('{"finetune": {"lrr": 0.1}}', UsageError, "did you mean 'lr'"),
        ('{"finetune": {"seed": 1}}', UsageError, "give --seed on the command line"),
        ('{"finetune": {"epochs": "ten"}}', UsageError, "`epochs` must be int"),
        ('{"finetune": {"train_bn": 1}}', UsageError, "`train_bn` must be bool"),
        ('{"finetune": [1, 2]}', DataError, "holds no object of fine-tuning options"),
        ("not json", DataError, "is not a JSON file"),
    ],
)
def test_bad_files_are_one_error_naming_the_key(tmp_path, content, error, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(error) as err:
        read_config(path)
    assert message in str(err.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_config(tmp_path / "absent.json")


def test_options_typed_on_the_command_line_win():
    options = FinetuneOptions(lr=0.1, l2=0.0)
    taken = apply_config(options, {"lr": 0.002, "l2": 1e-4, "epochs": 7}, given={"lr"})
    assert (options.lr, options.l2, options.epochs) == (0.1, 1e-4, 7)
    assert taken == ["l2", "epochs"]


def test_unfreeze_top_n_is_an_option_and_bad_modes_are_refused():
    assert FinetuneOptions(unfreeze="top:2").unfreeze_top() == 2
    assert FinetuneOptions(unfreeze="none").unfreeze_top() is None
    FinetuneOptions(unfreeze="top:0").check()
    with pytest.raises(UsageError, match="none, all, gradual or top:N"):
        FinetuneOptions(unfreeze="top:x").check()


def test_unfreeze_top_n_trains_the_top_n_reused_layers_with_weights():
    from reuse.training.finetune import finetune
    from tests.helpers import classification_data, mlp

    x, y = classification_data(n=40, n_in=8, n_classes=3)
    result = finetune(mlp(n_in=8, units=6, n_out=3), (x, y), unfreeze="top:2", epochs=1, seed=0)
    assert result.stages[0].trainable == ["hidden5", "hidden4"]
    result = finetune(mlp(n_in=8, units=6, n_out=3), (x, y), unfreeze="top:0", epochs=1, seed=0)
    assert result.stages[0].trainable == []
