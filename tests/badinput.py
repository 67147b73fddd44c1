"""Assertions shared by the bad-input suites: a clear error, naming what was wrong, with nothing on disk changed.

``expect_clear_error`` checks the Python API; ``expect_cli_error`` runs the ``snn`` command in-process and
checks its one-line error (exit status 1 or argparse's 2, no traceback).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

__all__ = ["snapshot", "expect_clear_error", "expect_cli_error"]


def snapshot(*roots) -> dict:
    """Path -> sha256 of every file under each root (a file root is itself); missing roots map to None."""
    out: dict = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        elif root.is_dir():
            for dirpath, _, files in os.walk(root):
                for name in files:
                    p = Path(dirpath, name)
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(root)] = None
    return out


def _names_all(message: str, names) -> None:
    low = message.lower()
    missing = [n for n in names if str(n).lower() not in low]
    assert not missing, f"error message does not name {missing}: {message!r}"


def expect_clear_error(fn, exc_type, *names, unchanged=()):
    """Call ``fn()``; it must raise ``exc_type`` whose message contains every one of ``names``
    (case-insensitive), and leave every file under ``unchanged`` as it was. Returns the exception."""
    before = snapshot(*unchanged)
    with pytest.raises(exc_type) as info:
        fn()
    _names_all(str(info.value), names)
    assert snapshot(*unchanged) == before, "files changed on disk although the call failed"
    return info.value


def expect_cli_error(argv, capsys, *names, unchanged=(), status=(1, 2)):
    """Run ``snn ARGV`` in-process; it must exit with an error status, print a message naming every one of
    ``names`` on stderr without a traceback, and leave every file under ``unchanged`` as it was.
    Returns the error text."""
    from snn.cli import main

    before = snapshot(*unchanged)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors exit 2
        code = e.code
    err = capsys.readouterr().err
    assert code in status, f"snn {' '.join(map(str, argv))} exited {code}, expected one of {status}; stderr: {err}"
    assert "Traceback" not in err, err
    _names_all(err, names)
    assert snapshot(*unchanged) == before, "files changed on disk although the command failed"
    return err
