"""`cache-features --augment none --views K` is refused: it used to write a plain cache with no
views while the pipeline record said `views: K`."""

import pytest

from reuse.cache.writer import views_spec
from reuse.core.errors import UsageError


@pytest.mark.parametrize("off", ["none", "off", " none "])
def test_views_with_augmentation_turned_off_are_refused(off):
    with pytest.raises(UsageError) as err:
        views_spec(off, 4)
    assert "turns augmentation off" in err.value.message
    assert "--augment digits --views 8" in err.value.hint


def test_views_with_a_spec_still_parse():
    assert views_spec("digits", 4).canonical() == "shift:0.08,rotate:0.04,zoom:0.08"
    assert views_spec(None, None) is None
