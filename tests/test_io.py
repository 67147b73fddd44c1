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


def _dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_write_removes_temporaries_of_killed_writers_only(tmp_path):
    from snn.io import _host

    p = tmp_path / "checkpoint.pt"
    dead = tmp_path / f".checkpoint.pt.{_host()}.{_dead_pid()}.abc123_x.tmp"
    live = tmp_path / f".checkpoint.pt.{_host()}.{os.getpid()}.def456.tmp"  # a write in progress
    other_host = tmp_path / f".checkpoint.pt.elsewhere-node.{_dead_pid()}.ghi789.tmp"
    other_target = tmp_path / f".history.json.{_host()}.{_dead_pid()}.jkl012.tmp"
    for f in (dead, live, other_host, other_target):
        f.write_bytes(b"half a file")
    atomic_write_json(p, {"new": 1})
    assert json.loads(p.read_text()) == {"new": 1}
    assert not dead.exists()
    assert live.exists() and other_host.exists() and other_target.exists()


@pytest.mark.parametrize("make, kind, msg", [
    (lambda d: d.mkdir(), "file", "is a directory"),
    (lambda d: d.write_text("x"), "dir", "is not a directory"),
    (lambda d: (d.parent / "parent_is_file").write_text("x"), "file-below-file", "is a file, not a directory"),
])
def test_output_paths_of_the_wrong_kind_are_refused_naming_the_flag(tmp_path, make, kind, msg):
    from badinput import expect_clear_error
    from snn.io import check_output_dir, check_output_file

    target = tmp_path / "target"
    make(target)
    if kind == "file-below-file":
        target, kind = tmp_path / "parent_is_file" / "r.json", "file"
    check = check_output_file if kind == "file" else check_output_dir
    expect_clear_error(lambda: check(target, "--flag"), ValueError, "--flag", msg, unchanged=[tmp_path])
    assert sorted(p.name for p in tmp_path.iterdir()) in (["target"], ["parent_is_file"], ["parent_is_file", "target"])


def test_character_device_is_not_a_json_target():
    from badinput import expect_clear_error
    from snn.io import check_output_file

    expect_clear_error(lambda: check_output_file("/dev/null", "--json"), ValueError, "--json", "not a regular file")


def test_full_disk_is_found_before_work_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from snn import io as snn_io

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snn_io.os, "fsync", no_space)
    with pytest.raises(OSError, match="--out: cannot write into .*the disk is full") as e:
        snn_io.check_output_dir(tmp_path / "run", "--out")
    assert e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_found_before_work(tmp_path, monkeypatch):
    import errno

    from snn import io as snn_io

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(snn_io.tempfile, "mkstemp", denied)  # as for a non-root user in a read-only directory
    with pytest.raises(PermissionError, match="--json: cannot write into"):
        snn_io.check_output_file(tmp_path / "s.json", "--json")


def test_valid_output_paths_pass_and_leave_nothing(tmp_path):
    from snn.io import check_output_dir, check_output_file

    (tmp_path / "old.json").write_text("{}")
    check_output_file(tmp_path / "old.json", "--json")  # an existing file is replaced later, atomically
    check_output_file(tmp_path / "new" / "deeper" / "s.json", "--json")
    check_output_dir(tmp_path / "run", "--out")
    check_output_dir(tmp_path, "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"]
