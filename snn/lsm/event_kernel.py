"""Event-driven reservoir simulation in C (``csrc/event_lsm.c``), loaded through ctypes.

A spiking reservoir is sparse twice over: each neuron reaches ~p·N others, and only a few percent of neurons
(and input pixels) are active per step. The C kernel walks the CSR rows of the active inputs and spikes only,
so a step costs (events + spikes) × fan-out instead of a dense ``B x N x N`` matmul, and it runs the whole
``[T, B]`` simulation in one call (on AVX-512, blocks of 16 samples share each row read, and a step where most
neurons fired in some sample gathers each neuron's recurrent input instead of scattering the rows of the
neurons that fired; OpenMP over blocks and samples when more than one thread is asked for). Where most input
synapses exist (dense input fields), :func:`run_event` takes ``W_in`` as dense tiles instead
(:func:`to_tiles`, :data:`DENSE_INPUT_DENSITY`): an input event then adds one contiguous row per tile,
vectorised over neurons, computed ahead for 16 steps at a time. Same equations as
:meth:`snn.lsm.LiquidStateMachine.run` (float32; summation order differs, so a rare threshold tie may differ).

The shared library is compiled on first use with the system C compiler (``$CC``, default ``cc``) into
``$SNN_CACHE`` (default ``~/.cache/snn``), keyed by a hash of the source, the flags and the CPU. Flags:
``-O3 -ffp-contract=off`` plus ``-march=native -fopenmp`` (the AVX-512 path where the CPU has it), falling
back to no ``-march=native``, then no OpenMP. :func:`available` says whether it could be built; asking for
the kernel where it cannot be built is a clear error. ``variant='portable'`` builds the scalar path only.
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

__all__ = ["available", "load", "simd", "to_csr", "to_tiles", "input_layout", "run_event", "recurrent_steps",
           "DENSE_INPUT_DENSITY"]

# W_in with at least this fraction of non-zero weights is passed dense: a CSR row then costs an index and a
# scattered add per synapse (and, in the 16-sample lane blocks, a 16-wide add where ~1 lane has the event), a
# dense row one contiguous vector add per 16 neurons. On the smooth-field reservoir (density 1) the dense rows
# ran the whole simulation several times faster (benchmarks/RESULTS-archive.md, liquid state machines).
DENSE_INPUT_DENSITY = 0.25

_SRC = Path(__file__).with_name("csrc") / "event_lsm.c"
_libs: dict = {}
_errors: dict = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("SNN_CACHE", Path.home() / ".cache" / "snn"))


# compiler flags, tried in order until one builds: native SIMD (AVX-512 path) + OpenMP, then without
# -march=native, then without OpenMP (single-threaded, the pragma is ignored). -ffp-contract=off: no FMA, so the
# rounding is the torch engine's.
_FLAGS = {"native": [["-march=native", "-fopenmp"], ["-fopenmp"], []],
          "portable": [["-DLSM_PORTABLE", "-fopenmp"], ["-DLSM_PORTABLE"]]}
_BASE = ["-O3", "-ffp-contract=off", "-fPIC", "-shared"]


def _cpu_id() -> str:
    """The CPU model and flags (``-march=native`` builds are only valid on the CPU that built them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform
        return platform.processor() or platform.machine()
    return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))


def _build(out: Path, variant: str) -> list[str]:
    """Compile the kernel into ``out``; returns the flags that built it."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"no C compiler {cc!r} on PATH to build the event-driven LSM kernel; "
                           f"install gcc/clang or use engine='torch'")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    errors = []
    try:
        for extra in _FLAGS[variant]:
            res = subprocess.run([cc, *_BASE, *extra, str(_SRC), "-o", tmp], capture_output=True, text=True)
            if res.returncode == 0:
                os.replace(tmp, out)
                return extra
            errors.append(f"{' '.join(extra) or '(no extra flags)'}: {res.stderr.strip()}")
        raise RuntimeError("building the event-driven LSM kernel failed:\n" + "\n".join(errors))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(variant: str = "native"):
    """The ctypes library (built on first use); raises RuntimeError when it cannot be built.

    ``variant='native'``: built for this CPU (the AVX-512 path where the CPU has it); ``'portable'``: the
    scalar C path only (what a CPU without AVX-512 runs; tests compare the two)."""
    if variant not in _FLAGS:
        raise ValueError(f"event kernel variant must be one of {tuple(_FLAGS)}, got {variant!r}")
    if variant in _libs:
        return _libs[variant]
    if variant in _errors:
        raise RuntimeError(_errors[variant])
    try:
        key = hashlib.sha1(_SRC.read_bytes() + repr((_BASE, _FLAGS[variant], _cpu_id())).encode()).hexdigest()[:12]
        path = _cache_dir() / f"lsm_event_kernel-{variant}-{key}.so"
        if not path.is_file():
            _build(path, variant)
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError) as e:
        _errors[variant] = f"event-driven LSM kernel unavailable: {e}"
        raise RuntimeError(_errors[variant]) from e
    p = ctypes.c_void_p
    f = ctypes.c_float
    i = ctypes.c_int
    lib.lsm_event_run.argtypes = [i, i, i, i, p, p, p, p, p, p, p, p, f, f, f, f, f, f, p, p, p, p, p, i, p]
    lib.lsm_event_run.restype = ctypes.c_int64
    lib.lsm_event_simd.restype = ctypes.c_int
    lib.lsm_event_ntile.restype = ctypes.c_int
    _libs[variant] = lib
    return lib


def simd(variant: str = "native") -> bool:
    """Whether the loaded kernel runs the AVX-512 path."""
    return bool(load(variant).lsm_event_simd())


_last_steps = dict(gathered=0, scattered=0)


def recurrent_steps() -> dict:
    """How the last :func:`run_event` call's lane blocks summed their recurrent input: ``{'gathered': steps,
    'scattered': steps}`` (steps with a spike; see ``csrc/event_lsm.c``)."""
    return dict(_last_steps)


def available(variant: str = "native") -> bool:
    try:
        load(variant)
        return True
    except RuntimeError:
        return False


def to_csr(w: torch.Tensor):
    """Row-major CSR ``(ptr int64, col int32, val float32)`` numpy arrays of a dense ``[rows, cols]`` matrix
    (columns ascending within a row)."""
    a = w.detach().float().cpu().numpy()
    rows, cols = np.nonzero(a)  # C order: by row, then column
    ptr = np.zeros(a.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=a.shape[0]), out=ptr[1:])
    return ptr, cols.astype(np.int32), np.ascontiguousarray(a[rows, cols], dtype=np.float32)


def to_tiles(w: torch.Tensor, variant: str = "native") -> np.ndarray:
    """A dense ``[rows, cols]`` matrix tile-major, as the kernel's dense input reads it: float32
    ``[ceil(cols/tile), rows, tile]`` with the last tile zero-padded (``tile`` = the kernel's NTILE, 64)."""
    tile = load(variant).lsm_event_ntile()
    rows, cols = w.shape
    n_tiles = -(-cols // tile)
    padded = np.zeros((rows, n_tiles * tile), dtype=np.float32)
    padded[:, :cols] = w.detach().float().cpu().numpy()
    out = _aligned_empty((n_tiles, rows, tile))
    out[...] = padded.reshape(rows, n_tiles, tile).transpose(1, 0, 2)
    return out


def _aligned_empty(shape, align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous float32 array whose data starts on an ``align``-byte boundary: the dense
    tiles' rows are then whole cache lines (numpy's 16-byte alignment split every 64-byte load in two, and
    the dense input ran 2x slower)."""
    n = int(np.prod(shape))
    raw = np.empty(n + align // 4, dtype=np.float32)
    start = (-raw.ctypes.data % align) // 4
    return raw[start:start + n].reshape(shape)


def input_layout(w_in: torch.Tensor, variant: str = "native"):
    """What :func:`run_event` takes as ``w_in``: the tiles of :func:`to_tiles` when at least
    :data:`DENSE_INPUT_DENSITY` of the weights are non-zero, else the CSR triple of :func:`to_csr`."""
    if float((w_in != 0).float().mean()) >= DENSE_INPUT_DENSITY:
        return to_tiles(w_in, variant)
    return to_csr(w_in)


def _checked_csr(name: str, csr, rows: int | None, cols: int):
    """``(ptr int64, col int32, val float32)`` contiguous, after checking that the triple is a valid CSR
    matrix of ``rows`` (None: any) x ``cols``: the kernel indexes with these arrays unchecked."""
    try:
        ptr, col, val = csr
    except (TypeError, ValueError):
        raise ValueError(f"run_event: {name} must be a CSR triple (ptr, col, val) from to_csr()") from None
    ptr, col, val = (np.ascontiguousarray(a, dtype=t) for a, t in zip(csr, (np.int64, np.int32, np.float32)))
    if ptr.ndim != 1 or len(ptr) < 1 or (rows is not None and len(ptr) != rows + 1):
        raise ValueError(f"run_event: {name} needs {'rows + 1' if rows is None else rows + 1} row pointers, "
                         f"got {len(ptr)}")
    if ptr[0] != 0 or ptr[-1] != len(col) or len(col) != len(val) or (np.diff(ptr) < 0).any():
        raise ValueError(f"run_event: {name} is not a valid CSR matrix (row pointers {ptr[0]}..{ptr[-1]}, "
                         f"{len(col)} columns, {len(val)} values)")
    if len(col) and (col.min() < 0 or col.max() >= cols):
        raise ValueError(f"run_event: {name} has column indices outside [0, {cols})")
    return ptr, col, val


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def run_event(x: torch.Tensor, w_in, w_rec_csr, *, tau: float, v_threshold: float, v_reset: float,
              gain: float, trace_tau: float, bin_of_t: np.ndarray, n_bins: int, record: bool = False,
              volts: bool = False, n_threads: int | None = None, variant: str = "native"):
    """Simulate ``x [T, B, n_in]``; returns ``(counts [n_bins, B, N], trace sums [n_bins, B, N],
    V at each bin's last step [n_bins, B, N] or None, spikes [T, B, N] uint8 or None)``.

    ``w_in``: the CSR triple of :func:`to_csr` or the dense tiles of :func:`to_tiles` (see
    :func:`input_layout`); ``volts``: also return the membrane potentials. A NaN/Inf in ``x`` raises ValueError
    (the kernel counts them while it scans the input)."""
    lib = load(variant)
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"run_event: x must be a [T, B, n_in] tensor, got {getattr(x, 'shape', type(x).__name__)}")
    t_steps, b, n_in = x.shape
    try:
        n = len(w_rec_csr[0]) - 1
    except (TypeError, IndexError, KeyError):
        raise ValueError("run_event: w_rec must be a CSR triple (ptr, col, val) from to_csr()") from None
    rec = _checked_csr("w_rec", w_rec_csr, None, n)
    bins = np.ascontiguousarray(bin_of_t, dtype=np.int32)
    if n_bins < 1 or bins.shape != (t_steps,) or (t_steps and (bins.min() < 0 or bins.max() >= n_bins)):
        raise ValueError(f"run_event: bin_of_t must give each of the T={t_steps} steps a bin in [0, n_bins={n_bins}), "
                         f"got shape {list(bins.shape)}")
    if isinstance(w_in, np.ndarray):
        tile = lib.lsm_event_ntile()
        want = (-(-n // tile), n_in, tile)
        if w_in.shape != want or w_in.dtype != np.float32 or not w_in.flags.c_contiguous:
            raise ValueError(f"run_event: a dense w_in must be the C-contiguous float32 tiles {list(want)} of "
                             f"to_tiles(W_in [{n_in}, {n}]), got {w_in.dtype} {list(w_in.shape)}")
        in_csr, in_dense = (None, None, None), w_in
    else:
        in_csr, in_dense = _checked_csr("w_in", w_in, n_in, n), None
    xs = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    counts = np.zeros((n_bins, b, n), dtype=np.float32)
    traces = np.zeros((n_bins, b, n), dtype=np.float32)
    vs = np.zeros((n_bins, b, n), dtype=np.float32) if volts else None
    spikes = np.zeros((t_steps, b, n), dtype=np.uint8) if record else None
    steps = np.zeros(2, dtype=np.int64)
    d = 1.0 / tau
    bad = lib.lsm_event_run(t_steps, b, n, n_in, *(_ptr(a) for a in in_csr), _ptr(in_dense),
                            *(_ptr(a) for a in rec), _ptr(xs), 1.0 - d, v_reset * d, v_threshold, v_reset,
                            gain, float(np.exp(-1.0 / trace_tau)), _ptr(bins), _ptr(counts), _ptr(traces),
                            _ptr(vs), _ptr(spikes), int(n_threads or torch.get_num_threads()), _ptr(steps))
    _last_steps.update(gathered=int(steps[0]), scattered=int(steps[1]))
    if bad < 0:
        raise MemoryError(f"event-driven LSM kernel: out of memory for its scratch buffers (N={n}, n_in={n_in}, "
                          f"B={b}); simulate fewer samples at a time")
    if bad:
        raise ValueError(f"LiquidStateMachine: input contains NaN or Inf ({bad} values)")
    as_tensor = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return as_tensor(counts), as_tensor(traces), as_tensor(vs), as_tensor(spikes)
