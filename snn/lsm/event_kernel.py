"""Event-driven reservoir simulation in C (``csrc/event_lsm.c``), loaded through ctypes.

A spiking reservoir is sparse twice over: each neuron reaches ~p·N others, and only a few percent of neurons
(and input pixels) are active per step. The C kernel walks the CSR rows of the active inputs and spikes only,
so a step costs (events + spikes) × fan-out instead of a dense ``B x N x N`` matmul, and it runs the whole
``[T, B]`` simulation in one call (OpenMP over samples). Same equations as
:meth:`snn.lsm.LiquidStateMachine.run` (float32; summation order differs, so a rare threshold tie may differ).

The shared library is compiled on first use with the system C compiler (``$CC``, default ``cc``) into
``$SNN_CACHE`` (default ``~/.cache/snn``), keyed by a hash of the source. :func:`available` says whether it
could be built; asking for the kernel where it cannot be built is a clear error.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["available", "load", "to_csr", "run_event"]

_SRC = Path(__file__).with_name("csrc") / "event_lsm.c"
_lib = None
_error: str | None = None


def _cache_dir() -> Path:
    return Path(os.environ.get("SNN_CACHE", Path.home() / ".cache" / "snn"))


def _build(out: Path) -> None:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"no C compiler {cc!r} on PATH to build the event-driven LSM kernel; "
                           f"install gcc/clang or use engine='torch'")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    base = [cc, "-O3", "-fPIC", "-shared", str(_SRC), "-o", tmp]
    try:
        res = subprocess.run(base[:4] + ["-fopenmp"] + base[4:], capture_output=True, text=True)
        if res.returncode != 0:  # no OpenMP: build single-threaded (the pragma is ignored)
            res = subprocess.run(base, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"building the event-driven LSM kernel failed:\n{res.stderr.strip()}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load():
    """The ctypes library (built on first use); raises RuntimeError when it cannot be built."""
    global _lib, _error
    if _lib is not None:
        return _lib
    if _error is not None:
        raise RuntimeError(_error)
    try:
        key = hashlib.sha1(_SRC.read_bytes()).hexdigest()[:12]
        path = _cache_dir() / f"lsm_event_kernel-{key}.so"
        if not path.is_file():
            _build(path)
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError) as e:
        _error = f"event-driven LSM kernel unavailable: {e}"
        raise RuntimeError(_error) from e
    p = ctypes.c_void_p
    f = ctypes.c_float
    i = ctypes.c_int
    lib.lsm_event_run.argtypes = [i, i, i, i, p, p, p, p, p, p, p, f, f, f, f, f, f, p, p, p, p, i]
    lib.lsm_event_run.restype = None
    _lib = lib
    return lib


def available() -> bool:
    try:
        load()
        return True
    except RuntimeError:
        return False


def to_csr(w: torch.Tensor):
    """Row-major CSR ``(ptr int64, col int32, val float32)`` numpy arrays of a dense ``[rows, cols]`` matrix."""
    csr = w.detach().float().to_sparse_csr()
    return (csr.crow_indices().numpy().astype(np.int64), csr.col_indices().numpy().astype(np.int32),
            np.ascontiguousarray(csr.values().numpy(), dtype=np.float32))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def run_event(x: torch.Tensor, w_in_csr, w_rec_csr, *, tau: float, v_threshold: float, v_reset: float,
              gain: float, trace_tau: float, bin_of_t: np.ndarray, n_bins: int, record: bool = False,
              n_threads: int | None = None):
    """Simulate ``x [T, B, n_in]``; returns ``(counts [n_bins, B, N], trace sums [n_bins, B, N], spikes or None)``."""
    lib = load()
    t_steps, b, n_in = x.shape
    n = len(w_rec_csr[0]) - 1
    xs = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    counts = np.zeros((n_bins, b, n), dtype=np.float32)
    traces = np.zeros((n_bins, b, n), dtype=np.float32)
    spikes = np.zeros((t_steps, b, n), dtype=np.uint8) if record else None
    bins = np.ascontiguousarray(bin_of_t, dtype=np.int32)
    d = 1.0 / tau
    lib.lsm_event_run(t_steps, b, n, n_in, *(_ptr(a) for a in w_in_csr), *(_ptr(a) for a in w_rec_csr),
                      _ptr(xs), 1.0 - d, v_reset * d, v_threshold, v_reset, gain,
                      float(np.exp(-1.0 / trace_tau)), _ptr(bins), _ptr(counts), _ptr(traces),
                      _ptr(spikes) if record else None, int(n_threads or torch.get_num_threads()))
    return (torch.from_numpy(counts), torch.from_numpy(traces),
            torch.from_numpy(spikes) if record else None)
