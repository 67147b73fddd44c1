"""Run a test file's Triton checks in a subprocess under the Triton interpreter (TRITON_INTERPRET=1 must be set
before triton is imported, so it cannot be switched on inside the test process)."""
import os
import subprocess
import sys

import pytest


def run_triton_main(test_file: str, flag: str = "--triton", done: str = "triton ok") -> None:
    """``python TEST_FILE FLAG`` with the interpreter on; it must exit 0 and print ``done``."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    path = os.path.abspath(test_file)
    r = subprocess.run([sys.executable, path, flag], env=env, capture_output=True, text=True, timeout=600,
                       cwd=os.path.dirname(os.path.dirname(path)))
    assert r.returncode == 0 and done in r.stdout, r.stderr[-3000:]
