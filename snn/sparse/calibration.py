"""The crossover firing rate of the event-driven kernels against dense matmuls, measured once per machine.

An event-driven Linear costs about ``a + b·nnz·N`` (weight rows added for the non-zero inputs), the dense one
``c·R·K·N``: below some input density ρ* (non-zeros / values) the event path wins. ρ* depends on the machine
(cache sizes, SIMD width, BLAS) and on the number of rows ``R`` (a dense matmul over few rows is memory bound
and much less efficient than over many), hardly on ``K`` and ``N``. :func:`calibrate` measures it for the forward
(:func:`~snn.sparse.kernels.event_linear` against ``x @ Wᵀ``) and the weight gradient
(:func:`~snn.sparse.kernels.event_grad_weight` against ``gᵀ x``) at a small Linear(512 -> 512), and for
convolutions (the event-driven convolution against ``conv2d``, 8 -> 16 channels, 3x3, 10x10 inputs), over
:data:`ROWS` rows and a ladder of densities (about a second). It times one thread by its CPU time (best of
``repeat``), so that other jobs on a busy machine do not move the result: both paths share the threads alike, so
the ratio holds for any thread count. The result is cached in ``$SNN_CACHE_DIR/sparse_crossover.json``
(default ``~/.cache/snn``) under a key made of the CPU model and the torch version. :func:`crossover` reads it
(calibrating on first use) and interpolates in ``log R`` between the measured row counts.
``SNN_SPARSE_CROSSOVER=<rate>`` fixes the rate instead (no measurement).
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import time

import torch

from ..checks import check_int, check_range
from . import kernels

__all__ = ["ROWS", "DENSITIES", "calibrate", "crossover", "cache_path", "machine_key"]

log = logging.getLogger("snn.sparse")

ROWS = (16, 2048)                                   # row counts measured (batch-1 and batch-128 inference, T=16)
DENSITIES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7)
KINDS = ("forward", "grad_weight", "conv")
_memo: dict = {}


def cache_path() -> str:
    """``$SNN_CACHE_DIR/sparse_crossover.json`` (default ``~/.cache/snn/sparse_crossover.json``)."""
    root = os.environ.get("SNN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snn")
    return os.path.join(root, "sparse_crossover.json")


def machine_key() -> str:
    """The CPU model and the torch version: what the crossover depends on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} | torch={torch.__version__}"


def _best_s(fn, repeat: int) -> float:
    """The least CPU time of this thread over ``repeat`` calls of ``fn`` (after one warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return max(best, 1e-9)


def _crossing(densities, event_s, dense_s) -> float:
    """The density where the event time meets the dense time (log-log interpolation between the measured
    points); the ends of the ladder when one path wins everywhere."""
    ratio = [math.log(e / dense_s) for e in event_s]    # < 0: the event path is faster
    if ratio[0] >= 0:
        return densities[0] / 2
    for i in range(1, len(ratio)):
        if ratio[i] >= 0:
            a, b = ratio[i - 1], ratio[i]
            la, lb = math.log(densities[i - 1]), math.log(densities[i])
            return math.exp(la + (lb - la) * (-a) / (b - a))
    return densities[-1]


def calibrate(*, rows=ROWS, features: int = 512, densities=DENSITIES, repeat: int = 5, save: bool = True) -> dict:
    """Measure the crossover rates here: ``{'forward': {R: ρ*}, 'grad_weight': {R: ρ*}, 'key': ..., 'times': ...}``
    (float32, ``features`` inputs and outputs, one thread, best of ``repeat`` runs); cached for
    :func:`crossover` when ``save``."""
    features = check_int(features, "features", "calibrate", 8)
    repeat = check_int(repeat, "repeat", "calibrate", 1)
    rows = [check_int(r, "rows", "calibrate", 1) for r in rows]
    densities = sorted(check_range(d, "densities", "calibrate", 0.0, 1.0, low_open=True) for d in densities)
    if not rows or not densities:
        raise ValueError("calibrate: rows and densities must not be empty")
    lib = kernels.library()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = _measure(lib, rows, features, densities, repeat)
    finally:
        torch.set_num_threads(threads)
    log.info("crossover rates measured on %s: forward %s, grad_weight %s, conv %s", result["key"],
             _fmt(result["forward"]), _fmt(result["grad_weight"]), _fmt(result["conv"]))
    if save:
        _store(result)
    _memo[result["key"]] = result
    return result


def _measure(lib, rows, features, densities, repeat) -> dict:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(features, features, generator=gen) / math.sqrt(features)
    wtile = lib.tile_weight(w)
    out = {k: {} for k in KINDS}
    times = {}
    for R in rows:
        g = torch.randn(R, features, generator=gen)
        xs = [(torch.rand(R, features, generator=gen) < d).float() for d in densities]
        dense_f = _best_s(lambda: xs[0] @ w.t(), repeat)
        dense_g = _best_s(lambda: g.t() @ xs[0], repeat)
        ev_f = [_best_s(lambda x=x: lib.event_linear(x, wtile, features, None, False), repeat) for x in xs]
        bits = [lib.pack_rows(x)[0] for x in xs]
        ev_g = [_best_s(lambda b=b: lib.event_grad_weight(b, features, g), repeat) for b in bits]
        out["forward"][R] = _crossing(densities, ev_f, dense_f)
        out["grad_weight"][R] = _crossing(densities, ev_g, dense_g)
        dense_c, ev_c = _conv_times(lib, R, densities, repeat, gen)
        out["conv"][R] = _crossing(densities, ev_c, dense_c)
        times[R] = dict(dense_forward=dense_f, event_forward=ev_f, dense_grad_weight=dense_g, event_grad_weight=ev_g,
                        dense_conv=dense_c, event_conv=ev_c)
    return dict(key=machine_key(), features=features, densities=list(densities), times=times, **out)


def _conv_times(lib, R, densities, repeat, gen, channels=(8, 16), size=10):
    """Dense ``conv2d`` and the event-driven convolution (3x3, zero padding 1) over ``R`` inputs."""
    c_in, c_out = channels
    w = torch.randn(c_out, c_in, 3, 3, generator=gen) / 4
    wtile = lib.tile_weight(w.reshape(c_out, -1))
    xs = [(torch.rand(R, c_in, size, size, generator=gen) < d).float() for d in densities]
    dense = _best_s(lambda: torch.nn.functional.conv2d(xs[0], w, None, 1, 1), repeat)
    return dense, [_best_s(lambda x=x: lib.event_conv2d(x, wtile, c_out, 3, 3, None, 1, 1), repeat) for x in xs]


def _fmt(d: dict) -> str:
    return ", ".join(f"R={r}: {v:.3f}" for r, v in sorted(d.items()))


def _store(result: dict) -> None:
    from ..io import atomic_write_json
    path = cache_path()
    table = _load_table(path)
    table[result["key"]] = result
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_json(path, table)


def _load_table(path: str) -> dict:
    try:
        with open(path) as f:
            table = json.load(f)
        return table if isinstance(table, dict) else {}
    except (OSError, ValueError):
        return {}       # no cache yet, or an unreadable one: measured again and rewritten


def _measured(key: str) -> dict:
    hit = _memo.get(key)
    if hit is None:
        hit = _load_table(cache_path()).get(key)
        if not (isinstance(hit, dict) and all(isinstance(hit.get(k), dict) and hit[k] for k in KINDS)):
            log.info("measuring the event-driven crossover rate on this machine (once; cached in %s)",
                     cache_path())
            hit = calibrate()
        _memo[key] = hit
    return hit


def crossover(rows: int, kind: str = "forward") -> float:
    """The input density below which the event-driven ``kind`` (``'forward'``: a Linear's forward;
    ``'grad_weight'``: its weight gradient; ``'conv'``: a convolution) is faster than the dense operation over
    ``rows`` rows here: ``SNN_SPARSE_CROSSOVER`` if set, else the calibration
    (measured on first use, then cached), interpolated in ``log rows``."""
    if kind not in KINDS:
        raise ValueError(f"crossover: kind must be one of {KINDS}, got {kind!r}")
    fixed = os.environ.get("SNN_SPARSE_CROSSOVER")
    if fixed:
        try:
            return check_range(float(fixed), "SNN_SPARSE_CROSSOVER", "snn.sparse", 0.0, 1.0)
        except ValueError as e:
            raise ValueError(f"{e} (the environment variable must be a rate in [0, 1])") from None
    table = {int(r): float(v) for r, v in _measured(machine_key())[kind].items()}
    pts = sorted(table.items())
    if rows <= pts[0][0]:
        return pts[0][1]
    if rows >= pts[-1][0]:
        return pts[-1][1]
    for (r0, v0), (r1, v1) in zip(pts, pts[1:]):
        if r0 <= rows <= r1:
            f = (math.log(rows) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return v0 + f * (v1 - v0)
    return pts[-1][1]
