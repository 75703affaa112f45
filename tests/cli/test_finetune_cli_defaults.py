"""The CLI's finetune defaults are the library's (FinetuneOptions): one set of defaults."""

import inspect

from reuse.cli import finetune_cmd
from reuse.training.options import FinetuneOptions


def test_cli_defaults_equal_library_defaults():
    library = FinetuneOptions()
    params = inspect.signature(finetune_cmd.finetune_command).parameters
    checked = 0
    for name, param in params.items():
        if not hasattr(library, name) or name in ("lr", "cut", "tensorboard"):
            continue
        default = param.default
        assert default == getattr(library, name), (
            f"--{name.replace('_', '-')}: CLI {default!r} != library {getattr(library, name)!r}"
        )
        checked += 1
    assert checked >= 15
