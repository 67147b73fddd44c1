"""``import snn`` reaches every subpackage by attribute (loaded on first use); unknown names are errors."""
import subprocess
import sys

import pytest


def test_subpackages_by_attribute_after_import_snn():
    code = ("import sys, snn; assert 'snn.models' not in sys.modules; "
            "print(callable(snn.models.get), callable(snn.data.get_dataset), callable(snn.train.fit), "
            "callable(snn.monitor.OpCounter), 'snn.models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"] * 5


def test_unknown_attribute_is_an_attribute_error():
    import snn

    with pytest.raises(AttributeError, match="no_such_thing"):
        snn.no_such_thing  # noqa: B018
