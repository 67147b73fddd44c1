"""Run a test file's Triton checks in a subprocess under the Triton interpreter (TRITON_INTERPRET=1 must be set
before triton is imported, so it cannot be switched on inside the test process).

Two forms:

* :func:`run_triton_main`: ``python TEST_FILE --triton`` once; the file's main runs all its Triton checks.
* :class:`Worker` / :func:`serve`: one long-lived ``python TEST_FILE --worker`` that answers one JSON request
  per line (``serve(handle)`` in the file's main calls ``handle(request)``), so that each parametrised test
  sends its case and fails with that case's traceback.
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback

import pytest

_MARK = "@@RESULT "


def _interp_env() -> dict:
    return dict(os.environ, TRITON_INTERPRET="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _repo_root(test_file: str) -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(test_file)))


def run_triton_main(test_file: str, flag: str = "--triton", done: str = "triton ok") -> None:
    """``python TEST_FILE FLAG`` with the interpreter on; it must exit 0 and print ``done``."""
    pytest.importorskip("triton")
    r = subprocess.run([sys.executable, os.path.abspath(test_file), flag], env=_interp_env(), capture_output=True,
                       text=True, timeout=600, cwd=_repo_root(test_file))
    assert r.returncode == 0 and done in r.stdout, r.stderr[-3000:]


def serve(handle, limit: int = 8) -> None:
    """The worker's loop: each stdin line is a JSON request passed to ``handle``; the answer (ok, or the
    traceback of what it raised, ``limit`` frames) goes to stdout after a marker line prefix."""
    for line in sys.stdin:
        try:
            handle(json.loads(line))
            res = {"ok": True}
        except Exception:  # noqa: BLE001 - reported to the test process
            res = {"ok": False, "error": traceback.format_exc(limit=limit)}
        sys.stdout.write(_MARK + json.dumps(res) + "\n")
        sys.stdout.flush()


class Worker:
    """``python TEST_FILE --worker`` under the interpreter; ``worker(request)`` sends one case and raises an
    AssertionError with the worker's traceback when the case failed."""

    def __init__(self, test_file: str):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(test_file), "--worker"], env=_interp_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     cwd=_repo_root(test_file))

    def __call__(self, req: dict) -> None:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(_MARK):
                res = json.loads(line[len(_MARK):])
                if not res["ok"]:
                    raise AssertionError(f"case {req}\n{res['error']}")
                return
        self.err.seek(0)
        raise RuntimeError(f"the triton worker died (rc={self.proc.poll()}):\n{self.err.read()[-4000:]}")

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.err.close()


def worker_fixture(test_file: str):
    """A module-scoped pytest fixture yielding a :class:`Worker` for ``test_file`` (skipped without triton)."""
    @pytest.fixture(scope="module")
    def fixture():
        pytest.importorskip("triton")
        w = Worker(test_file)
        yield w
        w.close()
    return fixture
