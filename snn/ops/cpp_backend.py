"""The ``cpp`` backend: fused multi-step kernels in C++/OpenMP (``snn._C``, built from ``csrc/``).

Each neuron family is one :class:`torch.autograd.Function` whose forward runs the whole
time loop in one kernel (``csrc/cpu/lif.cpp``, ``alif.cpp``, ``cubalif.cpp``) and whose
backward runs the reverse time loop in one kernel. The results equal the torch reference
(:mod:`snn.functional`): spikes bit-identical, states and gradients to rounding.

* dtypes: float32 and float64 run natively; float16/bfloat16 inputs are computed with
  float32 state (the input is upcast; spikes and the recorded membrane are cast back to the input
  dtype, the returned states stay float32 so that the next call continues exactly where a
  multi-step run would: :func:`snn.functional.state_dtype`).
* threshold: ``strict_threshold=True`` fires on ``H > V_th`` (a compile-time variant of the
  kernels, ``fire<STRICT>`` in ``csrc/neuron_math.h``); CUBALIF is always strict.
* memory: without gradients nothing is saved; with gradients the forward saves ``H`` (the
  membrane before the reset, in the compute dtype; spikes and the previous ``V`` are
  recomputed from it), ALIF also its threshold state ``B``, CUBALIF only ``V`` before reset;
  PLIF with ``decay_input=True`` keeps a reference to the input for the decay gradient.
* threads: ``torch.get_num_threads()`` OpenMP threads, one contiguous block of neurons each
  (fewer for small problems), the time loop inside each block, walked in chunks of 1024
  neurons; the PLIF decay gradient is reduced from per-chunk partial sums in order
  (deterministic for any thread count). Outputs of 48 MiB or more (above L3) are written with
  non-temporal (streaming) stores, smaller ones with ordinary stores so the next layer finds
  them in cache (``csrc/cpu/chunks.h``, ``parallel.h``).
* shared machines: with more runnable threads than cores, OpenMP's spin-waiting threads make
  every parallel region (ours and torch's) wait for a descheduled thread; set
  ``OMP_WAIT_POLICY=passive`` before Python starts there (measured: ``snn demo`` under load
  average 4 on 2 cores, 31.7 s of training with the default policy, 6.6 s passive; idle: 1.2 s
  default, 2.6 s passive).
* page faults: a fresh multi-megabyte output from glibc's default ``malloc`` is a new
  ``mmap`` whose first touch page-faults (about 20 ms per 64 MB here, more than the kernel
  itself). When this backend loads it raises glibc's ``M_MMAP_THRESHOLD`` and
  ``M_TRIM_THRESHOLD`` to 1 GiB (``mallopt`` via ctypes) so that large buffers come from the
  heap and stay there (the process keeps up to ~1 GiB of freed memory instead of returning it).
  Measured limitation: that alone does *not* stop the faults for torch's 64-byte-aligned
  tensors, because the small remainders ``posix_memalign`` splits off sit in glibc's tcache
  and keep freed blocks from merging, so each new 64 MB block still extends the heap. Adding
  ``GLIBC_TUNABLES=glibc.malloc.tcache_count=0`` to the environment *before Python starts*
  (it cannot be set at run time) brings the steady-state faults to about zero. Opt out of the
  ``mallopt`` call with ``SNN_MALLOC_TUNE=0``; :func:`malloc_tuned` says whether it is active.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os

import torch
from torch.autograd.function import once_differentiable

from ..functional import state_dtype

try:  # the compiled extension; absent until `make build`
    from .. import _C
except ImportError:  # pragma: no cover - depends on the build
    _C = None

NAME = "cpp"
FAMILIES = ("lif", "alif", "cubalif")

__all__ = ["NAME", "FAMILIES", "is_available", "supports_device", "lif_multistep", "alif_multistep",
           "cubalif_multistep", "tune_malloc", "malloc_tuned"]


def is_available() -> bool:
    return _C is not None


def supports_device(device) -> bool:
    return torch.device(device).type == "cpu"


# --------------------------------------------------------------------------------- malloc tuning
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_TUNED = False


def tune_malloc(threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap/trim thresholds so large tensors are recycled without page faults.

    Returns True when applied (glibc found and both ``mallopt`` calls accepted).
    """
    global _MALLOC_TUNED
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to do
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, threshold) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, threshold) == 1 and ok
    _MALLOC_TUNED = _MALLOC_TUNED or ok
    return ok


def malloc_tuned() -> bool:
    """Whether :func:`tune_malloc` is in effect in this process."""
    return _MALLOC_TUNED


if _C is not None and os.environ.get("SNN_MALLOC_TUNE", "1") != "0":
    tune_malloc()


# --------------------------------------------------------------------------------- input handling
def _check_input(x_seq, who: str) -> None:
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"{who}: x_seq must be a torch.Tensor, got {type(x_seq).__name__}")
    if not x_seq.is_floating_point():
        raise TypeError(f"{who}: x_seq must be floating point (float16/bfloat16/float32/float64), got {x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError(f"{who}: x_seq must be [T, ...] (rank >= 1), got a 0-dim tensor")


def _flat_seq(x_seq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[T, ...] -> contiguous [T, n] in the compute dtype (a view when already so; differentiable)."""
    return x_seq.to(dtype).reshape(x_seq.shape[0], math.prod(x_seq.shape[1:])).contiguous()


def _flat_state(s, x_seq: torch.Tensor, dtype: torch.dtype, name: str, who: str) -> torch.Tensor:
    """A state broadcastable to one step of x_seq -> contiguous [n] in the compute dtype."""
    step = x_seq.shape[1:]
    if not isinstance(s, torch.Tensor):
        s = torch.as_tensor(s, dtype=dtype, device=x_seq.device)
    if s.device != x_seq.device:
        raise ValueError(f"{who}: {name} is on {s.device} but x_seq is on {x_seq.device}")
    try:
        s = s.expand(step)
    except RuntimeError:
        raise ValueError(f"{who}: {name} of shape {tuple(s.shape)} does not match one step of x_seq "
                         f"{tuple(step)}") from None
    return s.to(dtype).reshape(-1).contiguous()


def _decay(decay, who: str):
    """(value as a python float, the tensor when it needs a gradient (PLIF) else None)."""
    if isinstance(decay, torch.Tensor):
        if decay.numel() != 1:
            raise ValueError(f"{who}: decay must be a float or a one-element tensor (one tau per layer), "
                             f"got shape {tuple(decay.shape)}")
        value = float(decay.detach())
        tensor = decay if decay.requires_grad else None
    else:
        value, tensor = float(decay), None
    if not math.isfinite(value):
        raise ValueError(f"{who}: decay must be finite, got {value}")
    return value, tensor


def _surrogate(surrogate, who: str):
    kind, alpha = getattr(surrogate, "kind", None), getattr(surrogate, "alpha", None)
    if kind not in range(5) or alpha is None:
        raise TypeError(f"{who}: surrogate must be a snn.surrogate.Surrogate with a kind in 0..4, got {surrogate!r}")
    if not getattr(surrogate, "spiking", True):
        raise ValueError(f"{who}: {surrogate!r} is the smooth (spiking=False) relaxation, which only the torch "
                         f"backend runs; use backend='torch' or a spiking surrogate")
    return int(kind), float(alpha)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def _opt(t):
    """A gradient that autograd left as None (output unused) stays None; others contiguous."""
    return None if t is None else t.contiguous()


# --------------------------------------------------------------------------------- LIF
class LIFFunction(torch.autograd.Function):
    """IF/LIF/PLIF over [T, n]: one fused forward kernel, one fused backward kernel.

    Inputs ``(x [T, n], v0 [n], decay_t, cfg)``; ``decay_t`` is the decay tensor when it needs
    a gradient (PLIF), else None; ``cfg`` holds the python parameters. Outputs
    ``(spikes, v_last, v_seq)`` (``v_seq`` empty unless ``cfg['record_v']``).
    """

    @staticmethod
    def forward(ctx, x, v0, decay_t, cfg):
        ctx.set_materialize_grads(False)  # unused outputs' gradients stay None: no zero tensors
        c = cfg
        s, v_last, h_seq, v_seq = _C.lif_forward(x, v0, c["decay"], c["v_threshold"], c["v_reset"], c["hard"],
                                                 c["decay_input"], True, c["record_v"], c["strict"])
        need_x = decay_t is not None and c["decay_input"]
        ctx.save_for_backward(h_seq, v0, x if need_x else None)
        ctx.cfg = c
        ctx.has_decay = decay_t is not None
        return s, v_last, (v_seq if c["record_v"] else x.new_empty(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v_last, g_v_seq):
        h_seq, v0, x = ctx.saved_tensors
        c = ctx.cfg
        g_s = torch.zeros_like(h_seq) if g_s is None else g_s.contiguous()
        g_v_seq = _opt(g_v_seq) if c["record_v"] else None
        gx, gv0, gd = _C.lif_backward(g_s, _opt(g_v_last), g_v_seq, h_seq, x, v0, c["decay"], c["v_threshold"],
                                      c["v_reset"], c["hard"], c["decay_input"], c["detach_reset"], c["kind"],
                                      c["alpha"], ctx.has_decay and ctx.needs_input_grad[2], c["strict"])
        return gx, gv0, (gd.reshape(()) if gd is not None else None), None


def _lif_cfg(decay, v_threshold, v_reset, decay_input, detach_reset, surrogate, record_v, strict, who):
    kind, alpha = _surrogate(surrogate, who)
    return dict(decay=decay, v_threshold=float(v_threshold), v_reset=0.0 if v_reset is None else float(v_reset),
                hard=v_reset is not None, decay_input=bool(decay_input), detach_reset=bool(detach_reset),
                kind=kind, alpha=alpha, record_v=bool(record_v), strict=bool(strict))


def _outputs(x_seq, s, states, v_seq, record_v):
    """Kernel outputs in the caller's shapes: spikes and the recorded membrane in the input dtype, the
    states in the state dtype (as the kernel computed them)."""
    io, step = x_seq.dtype, x_seq.shape[1:]
    return (s.reshape(x_seq.shape).to(io), *(st.reshape(step) for st in states),
            v_seq.reshape(x_seq.shape).to(io) if record_v else None)


def lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False):
    """IF/LIF/PLIF over ``[T, ...]`` -> ``(spikes, v_last, v_seq | None)``; equals
    :func:`snn.functional.lif.lif_multistep`."""
    who = "lif_multistep(backend='cpp')"
    _check_input(x_seq, who)
    dt = state_dtype(x_seq.dtype)
    d_value, d_tensor = _decay(decay, who)
    cfg = _lif_cfg(d_value, v_threshold, v_reset, decay_input, detach_reset, surrogate, record_v, strict_threshold,
                   who)
    x = _flat_seq(x_seq, dt)
    v0 = _flat_state(v_init, x_seq, dt, "v_init", who)
    if _needs_grad(x, v0, d_tensor):
        d_in = d_tensor.to(dt) if d_tensor is not None else None
        s, v_last, v_seq = LIFFunction.apply(x, v0, d_in, cfg)
    else:
        s, v_last, _, v_seq = _C.lif_forward(x, v0, d_value, cfg["v_threshold"], cfg["v_reset"], cfg["hard"],
                                             cfg["decay_input"], False, cfg["record_v"], cfg["strict"])
    return _outputs(x_seq, s, (v_last,), v_seq, record_v)


# --------------------------------------------------------------------------------- ALIF
class ALIFFunction(torch.autograd.Function):
    """ALIF over [T, n]: inputs ``(x, v0, b0, decay_t, cfg)``, outputs ``(spikes, v_last, b_last, v_seq)``."""

    @staticmethod
    def forward(ctx, x, v0, b0, decay_t, cfg):
        ctx.set_materialize_grads(False)  # unused outputs' gradients stay None: no zero tensors
        c = cfg
        s, v_last, b_last, h_seq, b_seq, v_seq = _C.alif_forward(
            x, v0, b0, c["decay"], c["rho"], c["beta"], c["v_threshold"], c["v_reset"], c["hard"], c["decay_input"],
            True, c["record_v"], c["strict"])
        need_x = decay_t is not None and c["decay_input"]
        ctx.save_for_backward(h_seq, b_seq, v0, b0, x if need_x else None)
        ctx.cfg = c
        ctx.has_decay = decay_t is not None
        return s, v_last, b_last, (v_seq if c["record_v"] else x.new_empty(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v_last, g_b_last, g_v_seq):
        h_seq, b_seq, v0, b0, x = ctx.saved_tensors
        c = ctx.cfg
        g_s = torch.zeros_like(h_seq) if g_s is None else g_s.contiguous()
        g_v_seq = _opt(g_v_seq) if c["record_v"] else None
        gx, gv0, gb0, gd = _C.alif_backward(
            g_s, _opt(g_v_last), _opt(g_b_last), g_v_seq, h_seq, b_seq, x, v0, b0, c["decay"], c["rho"], c["beta"],
            c["v_threshold"], c["v_reset"], c["hard"], c["decay_input"], c["detach_reset"], c["kind"], c["alpha"],
            ctx.has_decay and ctx.needs_input_grad[3], c["strict"])
        return gx, gv0, gb0, (gd.reshape(()) if gd is not None else None), None


def alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input, detach_reset,
                   surrogate, record_v=False, strict_threshold=False):
    """Adaptive LIF over ``[T, ...]`` -> ``(spikes, v_last, b_last, v_seq | None)``; equals
    :func:`snn.functional.alif.alif_multistep`."""
    who = "alif_multistep(backend='cpp')"
    _check_input(x_seq, who)
    dt = state_dtype(x_seq.dtype)
    d_value, d_tensor = _decay(decay, who)
    cfg = _lif_cfg(d_value, v_threshold, v_reset, decay_input, detach_reset, surrogate, record_v, strict_threshold,
                   who)
    cfg.update(rho=float(rho), beta=float(beta))
    x = _flat_seq(x_seq, dt)
    v0 = _flat_state(v_init, x_seq, dt, "v_init", who)
    b0 = _flat_state(b_init, x_seq, dt, "b_init", who)
    if _needs_grad(x, v0, b0, d_tensor):
        d_in = d_tensor.to(dt) if d_tensor is not None else None
        s, v_last, b_last, v_seq = ALIFFunction.apply(x, v0, b0, d_in, cfg)
    else:
        s, v_last, b_last, _, _, v_seq = _C.alif_forward(
            x, v0, b0, d_value, cfg["rho"], cfg["beta"], cfg["v_threshold"], cfg["v_reset"], cfg["hard"],
            cfg["decay_input"], False, cfg["record_v"], cfg["strict"])
    return _outputs(x_seq, s, (v_last, b_last), v_seq, record_v)


# --------------------------------------------------------------------------------- CUBALIF
class CUBALIFFunction(torch.autograd.Function):
    """CUBALIF over [T, n]: inputs ``(x, u0, v0, cfg)``, outputs ``(spikes, u_last, v_last, v_seq)``."""

    @staticmethod
    def forward(ctx, x, u0, v0, cfg):
        ctx.set_materialize_grads(False)  # unused outputs' gradients stay None: no zero tensors
        c = cfg
        s, u_last, v_last, vpre, v_seq = _C.cubalif_forward(x, u0, v0, c["cu"], c["cv"], c["v_threshold"], c["bias"],
                                                            True, c["record_v"])
        ctx.save_for_backward(vpre)
        ctx.cfg = c
        return s, u_last, v_last, (v_seq if c["record_v"] else x.new_empty(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_u_last, g_v_last, g_v_seq):
        (vpre,) = ctx.saved_tensors
        c = ctx.cfg
        g_s = torch.zeros_like(vpre) if g_s is None else g_s.contiguous()
        g_v_seq = _opt(g_v_seq) if c["record_v"] else None
        gx, gu0, gv0 = _C.cubalif_backward(g_s, _opt(g_u_last), _opt(g_v_last), g_v_seq, vpre, c["cu"], c["cv"],
                                           c["v_threshold"], c["detach_reset"], c["kind"], c["alpha"])
        return gx, gu0, gv0, None


def cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate, record_v=False):
    """Current-based LIF over ``[T, ...]`` -> ``(spikes, u_last, v_last, v_seq | None)``; equals
    :func:`snn.functional.cubalif.cubalif_multistep`."""
    who = "cubalif_multistep(backend='cpp')"
    _check_input(x_seq, who)
    if isinstance(bias, torch.Tensor):
        if bias.numel() != 1 or bias.requires_grad:
            raise ValueError(f"{who}: bias must be a python float (or a one-element tensor without gradient)")
        bias = float(bias)
    kind, alpha = _surrogate(surrogate, who)
    dt = state_dtype(x_seq.dtype)
    cfg = dict(cu=1.0 - float(du), cv=1.0 - float(dv), v_threshold=float(v_threshold), bias=float(bias),
               detach_reset=bool(detach_reset), kind=kind, alpha=alpha, record_v=bool(record_v))
    x = _flat_seq(x_seq, dt)
    u0 = _flat_state(u_init, x_seq, dt, "u_init", who)
    v0 = _flat_state(v_init, x_seq, dt, "v_init", who)
    if _needs_grad(x, u0, v0):
        s, u_last, v_last, v_seq = CUBALIFFunction.apply(x, u0, v0, cfg)
    else:
        s, u_last, v_last, _, v_seq = _C.cubalif_forward(x, u0, v0, cfg["cu"], cfg["cv"], cfg["v_threshold"],
                                                         cfg["bias"], False, cfg["record_v"])
    return _outputs(x_seq, s, (u_last, v_last), v_seq, record_v)
