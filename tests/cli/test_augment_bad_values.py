"""Bad --augment items and --tta counts a new user typed: one `Error:` line that says what to do."""

import pytest

from reuse.augment.spec import parse_augment
from reuse.core.errors import SpecError
from tests.helpers import cli


@pytest.mark.parametrize("text", [":0.1", "shift,:0.2", " : "])
def test_an_item_without_a_name(text):
    # It said: unknown augmentation `` — did you mean 'flip' or 'crop' or 'shift'?
    with pytest.raises(SpecError) as err:
        parse_augment(text)
    assert "has no name" in err.value.message and "shift:0.08" in err.value.hint


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_negative_tta_names_the_valid_range(tmp_path, command):
    # --tta -1 said "--tta must be >= 1" although --tta 0 (none) is valid; without --augment it
    # said "--tta needs an augmentation".
    for extra in ([], ["--augment", "shift"]):
        result = cli(
            [command, tmp_path / "m.keras", "--data", tmp_path / "d.npz", "--tta", "-1", *extra]
        )
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--tta takes K >= 0" in lines[0] and "Received: -1" in lines[0]
