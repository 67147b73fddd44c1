import json
import os

import pytest

from snn.io import atomic_path, atomic_write_json


def test_json_written_whole_with_normal_permissions(tmp_path):
    p = tmp_path / "sub" / "r.json"
    atomic_write_json(p, {"a": 1.5})
    assert json.loads(p.read_text()) == {"a": 1.5}
    assert os.stat(p).st_mode & 0o044  # readable by others, unlike mkstemp's 0600
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_json(p, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash while writing")
    assert json.loads(p.read_text()) == {"old": True}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]
