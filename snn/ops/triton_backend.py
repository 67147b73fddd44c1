"""The ``triton`` backend: the kernels of ``kernels/`` (the package :mod:`snn.kernels`).

Available when ``triton`` imports and either CUDA is present or ``TRITON_INTERPRET=1`` is set (the
Triton interpreter then runs the same kernels on CPU tensors, slowly: that is how CI tests them).
One ``torch.autograd.Function`` per family wraps a forward and a backward kernel; gradients flow to
``x_seq``, the initial states and, for PLIF, to ``decay`` when it is a tensor that requires grad.

Inputs may be non-contiguous (they are made contiguous), ``T`` may be 0 or 1, the neuron count ``N``
anything (also 0). float16/bfloat16 inputs keep a float32 state inside the kernels and between calls
(the initial and returned states are float32, :func:`snn.functional.state_dtype`; spikes and the
recorded membrane come back in the input dtype); float64 runs in float64. ``strict_threshold=True``
fires on ``H > V_th`` (the kernels' ``STRICT``). Triton is imported on first use, so importing this
module never needs it.
"""
from __future__ import annotations

import contextlib
import math
import os

import torch
from torch.autograd.function import once_differentiable

from ..functional import state_dtype

NAME = "triton"
FAMILIES = ("lif", "alif", "cubalif")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# Neurons per program. ``None``: chosen by ``_block`` (128..1024 on CUDA, 256 in the interpreter).
# Tests set it small to run several programs with a ragged last one.
BLOCK: int | None = None
NUM_WARPS = 4


def _interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def is_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or _interpret()


def supports_device(device) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available()
    return device.type == "cpu" and _interpret()


# -- helpers ---------------------------------------------------------------------------------------
def _kernels(name):
    import importlib
    return importlib.import_module(f"snn.kernels.{name}")


_SMS: dict = {}


def _block(x, N=None) -> int:
    """Neurons per program: up to 1024, fewer when ``N`` is small so that every SM gets work
    (the time loop is sequential, so the neurons are the only parallelism)."""
    if BLOCK is not None:
        return int(BLOCK)
    if not x.is_cuda:
        return 256
    if N is None:
        N = x.shape[-1]
    idx = x.device.index if x.device.index is not None else torch.cuda.current_device()
    if idx not in _SMS:
        _SMS[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    block = 1024
    while block > 128 and _cdiv(N, block) < 2 * _SMS[idx]:
        block //= 2
    return block


def _launch_kw(x, block) -> dict:
    # No FMA contraction: the charge and reset must round exactly as the torch reference does,
    # so that the spikes are identical. (The interpreter ignores these keywords.)
    if not x.is_cuda:
        return {}
    return {"num_warps": max(1, min(NUM_WARPS, block // 128)), "enable_fp_fusion": False}


def _guard(x):
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _half(x) -> bool:
    """16-bit input: the forward saves Z = H - θ (not H) and the backward reads the spikes."""
    return x.dtype in (torch.float16, torch.bfloat16)


def _cdt(dtype):
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


_PARAMS: dict = {}


def _params(device, *vals) -> torch.Tensor:
    """A float64 tensor of scalar parameters on ``device``, cached (no host-to-device copy per call)."""
    key = (str(device), vals)
    p = _PARAMS.get(key)
    if p is None:
        if len(_PARAMS) > 512:
            _PARAMS.clear()
        p = torch.tensor(vals, dtype=torch.float64, device=device)
        _PARAMS[key] = p
    return p


def _check(x_seq, *states):
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 1:
        raise ValueError("triton backend: x_seq must be a tensor shaped [T, ...]")
    if x_seq.dtype not in _DTYPES:
        raise TypeError(f"triton backend: x_seq dtype {x_seq.dtype} is not supported (use one of {_DTYPES})")
    if not supports_device(x_seq.device):
        raise RuntimeError(f"triton backend cannot run tensors on {x_seq.device} "
                           f"(CUDA tensors, or CPU tensors with TRITON_INTERPRET=1)")
    for s in states:
        if not isinstance(s, torch.Tensor):
            raise TypeError("triton backend: initial states must be tensors")


def _flat_state(s, x_seq, N):
    """An initial state as a contiguous ``[N]`` tensor of the state dtype (broadcast to a step's shape)."""
    s = s.to(device=x_seq.device, dtype=state_dtype(x_seq.dtype))
    return s.expand(x_seq.shape[1:]).contiguous().view(N)


def _decay_tensor(decay, x_seq):
    if isinstance(decay, torch.Tensor):
        if decay.numel() != 1:
            raise ValueError(f"triton backend: decay must be a float or a one-element tensor, got shape "
                             f"{tuple(decay.shape)}")
        return decay.to(x_seq.device)
    decay = float(decay)
    if not math.isfinite(decay):
        raise ValueError(f"triton backend: decay must be finite, got {decay}")
    return _params(x_seq.device, decay)


def _cdiv(a, b):
    return (a + b - 1) // b


def _grid(N, block):
    return (_cdiv(N, block),)


# -- LIF / IF / PLIF ------------------------------------------------------------------------------
class _LIFFunction(torch.autograd.Function):
    """Multi-step IF/LIF/PLIF: forward and backward kernels of :mod:`snn.kernels.lif`."""

    @staticmethod
    def forward(ctx, x, v0, decay, cfg):
        k = _kernels("lif")
        T, N = x.shape
        need_grad = any(ctx.needs_input_grad[:3])
        grad_d = bool(ctx.needs_input_grad[2])
        spikes = torch.empty_like(x)
        v_last = torch.empty_like(v0)
        v_seq = torch.empty_like(x) if cfg["record_v"] else None
        h = torch.empty_like(x) if need_grad else None
        d = decay.detach().reshape(1)
        params = _params(x.device, cfg["v_threshold"], cfg["v_reset"], cfg["a"], cfg["c"])
        block = _block(x)
        if N > 0:
            with _guard(x):
                k.lif_fwd_kernel[_grid(N, block)](
                    x, v0, d, params, spikes, v_last, v_seq if v_seq is not None else spikes,
                    h if h is not None else spikes, T, N,
                    CDT=_cdt(x.dtype), HARD=cfg["hard"], DECAY_INPUT=cfg["decay_input"], STRICT=cfg["strict"],
                    RECORD_V=v_seq is not None, SAVE_H=h is not None, SAVED_Z=_half(x), BLOCK=block,
                    **_launch_kw(x, block))
        if need_grad:
            saved_z = _half(x)
            ctx.saved_z, ctx.grad_d = saved_z, grad_d
            ctx.cfg, ctx.shape, ctx.decay_meta = cfg, (T, N), (decay.shape, decay.dtype)
            ctx.state_dtype = v0.dtype
            ctx.save_for_backward(h, spikes if saved_z else None, x if grad_d and cfg["decay_input"] else None,
                                  v0 if grad_d else None, d, params)
        ctx.set_materialize_grads(False)
        return (spikes, v_last, v_seq) if v_seq is not None else (spikes, v_last)

    @staticmethod
    @once_differentiable
    def backward(ctx, gs, gvlast, gvseq=None):
        k = _kernels("lif")
        h, s, x, v0, d, params = ctx.saved_tensors
        cfg, (T, N) = ctx.cfg, ctx.shape
        gx = torch.empty_like(h)
        gv0 = torch.empty(N, dtype=ctx.state_dtype, device=h.device)
        block = _block(h)
        nprog = _cdiv(N, block)
        gd = torch.zeros(max(nprog, 1), dtype=torch.float64, device=h.device) if ctx.grad_d else None
        if N > 0:
            gs = gs.contiguous() if gs is not None else None
            gvlast = gvlast.contiguous() if gvlast is not None else None
            gvseq = gvseq.contiguous() if gvseq is not None else None
            with _guard(h):
                k.lif_bwd_kernel[(nprog,)](
                    h, s if s is not None else h, x if x is not None else h, v0 if v0 is not None else gv0,
                    d, params, gs if gs is not None else h, gvseq if gvseq is not None else h,
                    gvlast if gvlast is not None else gv0, gx, gv0, gd if gd is not None else gv0,
                    T, N, max(T - 1, 0) * N,
                    CDT=_cdt(h.dtype), KIND=cfg["kind"], HARD=cfg["hard"], DECAY_INPUT=cfg["decay_input"],
                    DETACH=cfg["detach_reset"], STRICT=cfg["strict"], HAS_GS=gs is not None,
                    HAS_GVSEQ=gvseq is not None,
                    HAS_GVLAST=gvlast is not None, SAVED_Z=ctx.saved_z, GRAD_D=ctx.grad_d, BLOCK=block,
                    **_launch_kw(h, block))
        else:
            gv0.zero_()
        gdecay = None
        if ctx.grad_d:
            shape, dtype = ctx.decay_meta
            gdecay = gd.sum().to(dtype).reshape(shape)
        return gx, gv0, gdecay, None


def _surrogate_cfg(surrogate):
    if not getattr(surrogate, "spiking", True):
        raise RuntimeError(f"triton backend: a non-spiking surrogate ({surrogate}) runs only on the torch backend")
    kind, a, c = _kernels("surrogate").surrogate_constants(surrogate)
    return {"kind": kind, "a": a, "c": c}


def lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False):
    """IF/LIF/PLIF over ``[T, ...]`` (see :mod:`snn.kernels.lif`); returns ``(spikes, v_last, v_seq | None)``."""
    _check(x_seq, v_init)
    shape = x_seq.shape
    T, N = shape[0], math.prod(shape[1:])
    x = x_seq.contiguous().view(T, N)
    v0 = _flat_state(v_init, x_seq, N)
    cfg = {"v_threshold": float(v_threshold), "v_reset": 0.0 if v_reset is None else float(v_reset),
           "hard": v_reset is not None, "decay_input": bool(decay_input), "detach_reset": bool(detach_reset),
           "strict": bool(strict_threshold),
           "record_v": bool(record_v), **_surrogate_cfg(surrogate)}
    out = _LIFFunction.apply(x, v0, _decay_tensor(decay, x_seq), cfg)
    spikes, v_last = out[0].view(shape), out[1].view(shape[1:])
    return spikes, v_last, (out[2].view(shape) if record_v else None)


# -- ALIF ------------------------------------------------------------------------------------------
class _ALIFFunction(torch.autograd.Function):
    """Multi-step adaptive LIF: forward and backward kernels of :mod:`snn.kernels.alif`."""

    @staticmethod
    def forward(ctx, x, v0, b0, decay, cfg):
        k = _kernels("alif")
        T, N = x.shape
        need_grad = any(ctx.needs_input_grad[:4])
        grad_d = bool(ctx.needs_input_grad[3])
        spikes = torch.empty_like(x)
        v_last, b_last = torch.empty_like(v0), torch.empty_like(b0)
        v_seq = torch.empty_like(x) if cfg["record_v"] else None
        h = torch.empty_like(x) if need_grad else None
        b_seq = torch.empty_like(x) if need_grad else None
        d = decay.detach().reshape(1)
        params = _params(x.device, cfg["v_threshold"], cfg["v_reset"], cfg["a"], cfg["c"], cfg["rho"], cfg["beta"])
        block = _block(x)
        if N > 0:
            with _guard(x):
                k.alif_fwd_kernel[_grid(N, block)](
                    x, v0, b0, d, params, spikes, v_last, b_last, v_seq if v_seq is not None else spikes,
                    h if h is not None else spikes, b_seq if b_seq is not None else spikes, T, N,
                    CDT=_cdt(x.dtype), HARD=cfg["hard"], DECAY_INPUT=cfg["decay_input"], STRICT=cfg["strict"],
                    RECORD_V=v_seq is not None, SAVE=h is not None, SAVED_Z=_half(x), BLOCK=block,
                    **_launch_kw(x, block))
        if need_grad:
            saved_z = _half(x)
            ctx.saved_z, ctx.grad_d = saved_z, grad_d
            ctx.cfg, ctx.shape, ctx.decay_meta = cfg, (T, N), (decay.shape, decay.dtype)
            ctx.state_dtype = v0.dtype
            ctx.save_for_backward(h, b_seq, spikes if saved_z else None,
                                  x if grad_d and cfg["decay_input"] else None, v0 if grad_d else None, b0,
                                  d, params)
        ctx.set_materialize_grads(False)
        return (spikes, v_last, b_last, v_seq) if v_seq is not None else (spikes, v_last, b_last)

    @staticmethod
    @once_differentiable
    def backward(ctx, gs, gvlast, gblast, gvseq=None):
        k = _kernels("alif")
        h, b_seq, s, x, v0, b0, d, params = ctx.saved_tensors
        cfg, (T, N) = ctx.cfg, ctx.shape
        gx = torch.empty_like(h)
        gv0 = torch.empty(N, dtype=ctx.state_dtype, device=h.device)
        gb0 = torch.empty(N, dtype=ctx.state_dtype, device=h.device)
        block = _block(h)
        nprog = _cdiv(N, block)
        gd = torch.zeros(max(nprog, 1), dtype=torch.float64, device=h.device) if ctx.grad_d else None
        if N > 0:
            gs, gvlast, gblast, gvseq = (g.contiguous() if g is not None else None for g in (gs, gvlast, gblast, gvseq))
            with _guard(h):
                k.alif_bwd_kernel[(nprog,)](
                    h, b_seq, s if s is not None else h, x if x is not None else h,
                    v0 if v0 is not None else gv0, b0, d, params,
                    gs if gs is not None else h, gvseq if gvseq is not None else h,
                    gvlast if gvlast is not None else gv0, gblast if gblast is not None else gb0,
                    gx, gv0, gb0, gd if gd is not None else gv0, T, N, max(T - 1, 0) * N,
                    CDT=_cdt(h.dtype), KIND=cfg["kind"], HARD=cfg["hard"], DECAY_INPUT=cfg["decay_input"],
                    DETACH=cfg["detach_reset"], STRICT=cfg["strict"], HAS_GS=gs is not None,
                    HAS_GVSEQ=gvseq is not None,
                    HAS_GVLAST=gvlast is not None, HAS_GBLAST=gblast is not None, SAVED_Z=ctx.saved_z,
                    GRAD_D=ctx.grad_d, BLOCK=block, **_launch_kw(h, block))
        else:
            gv0.zero_()
            gb0.zero_()
        gdecay = None
        if ctx.grad_d:
            shape, dtype = ctx.decay_meta
            gdecay = gd.sum().to(dtype).reshape(shape)
        return gx, gv0, gb0, gdecay, None


def alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input, detach_reset,
                   surrogate, record_v=False, strict_threshold=False):
    """Adaptive LIF over ``[T, ...]`` (see :mod:`snn.kernels.alif`).

    Returns ``(spikes, v_last, b_last, v_seq | None)``."""
    _check(x_seq, v_init, b_init)
    shape = x_seq.shape
    T, N = shape[0], math.prod(shape[1:])
    x = x_seq.contiguous().view(T, N)
    v0, b0 = _flat_state(v_init, x_seq, N), _flat_state(b_init, x_seq, N)
    cfg = {"v_threshold": float(v_threshold), "v_reset": 0.0 if v_reset is None else float(v_reset),
           "hard": v_reset is not None, "decay_input": bool(decay_input), "detach_reset": bool(detach_reset),
           "strict": bool(strict_threshold),
           "rho": float(rho), "beta": float(beta), "record_v": bool(record_v), **_surrogate_cfg(surrogate)}
    out = _ALIFFunction.apply(x, v0, b0, _decay_tensor(decay, x_seq), cfg)
    spikes, v_last, b_last = out[0].view(shape), out[1].view(shape[1:]), out[2].view(shape[1:])
    return spikes, v_last, b_last, (out[3].view(shape) if record_v else None)


# -- CUBALIF ---------------------------------------------------------------------------------------
class _CUBALIFFunction(torch.autograd.Function):
    """Multi-step current-based LIF (Loihi): forward and backward kernels of :mod:`snn.kernels.cubalif`."""

    @staticmethod
    def forward(ctx, x, u0, v0, cfg):
        k = _kernels("cubalif")
        T, N = x.shape
        need_grad = any(ctx.needs_input_grad[:3])
        spikes = torch.empty_like(x)
        u_last, v_last = torch.empty_like(u0), torch.empty_like(v0)
        v_seq = torch.empty_like(x) if cfg["record_v"] else None
        h = torch.empty_like(x) if need_grad else None
        params = _params(x.device, 1.0 - cfg["du"], 1.0 - cfg["dv"], cfg["bias"], cfg["v_threshold"],
                         cfg["a"], cfg["c"])
        block = _block(x)
        if N > 0:
            with _guard(x):
                k.cubalif_fwd_kernel[_grid(N, block)](
                    x, u0, v0, params, spikes, u_last, v_last, v_seq if v_seq is not None else spikes,
                    h if h is not None else spikes, T, N,
                    CDT=_cdt(x.dtype), RECORD_V=v_seq is not None, SAVE_H=h is not None, SAVED_Z=_half(x),
                    BLOCK=block,
                    **_launch_kw(x, block))
        if need_grad:
            saved_z = _half(x)
            ctx.saved_z, ctx.cfg, ctx.shape, ctx.state_dtype = saved_z, cfg, (T, N), v0.dtype
            ctx.save_for_backward(h, spikes if saved_z else None, params)
        ctx.set_materialize_grads(False)
        return (spikes, u_last, v_last, v_seq) if v_seq is not None else (spikes, u_last, v_last)

    @staticmethod
    @once_differentiable
    def backward(ctx, gs, gulast, gvlast, gvseq=None):
        k = _kernels("cubalif")
        h, s, params = ctx.saved_tensors
        cfg, (T, N) = ctx.cfg, ctx.shape
        gx = torch.empty_like(h)
        gu0 = torch.empty(N, dtype=ctx.state_dtype, device=h.device)
        gv0 = torch.empty(N, dtype=ctx.state_dtype, device=h.device)
        block = _block(h)
        if N > 0:
            gs, gulast, gvlast, gvseq = (g.contiguous() if g is not None else None for g in (gs, gulast, gvlast, gvseq))
            with _guard(h):
                k.cubalif_bwd_kernel[_grid(N, block)](
                    h, s if s is not None else h, params, gs if gs is not None else h,
                    gvseq if gvseq is not None else h, gulast if gulast is not None else gu0,
                    gvlast if gvlast is not None else gv0, gx, gu0, gv0, T, N, max(T - 1, 0) * N,
                    CDT=_cdt(h.dtype), KIND=cfg["kind"], DETACH=cfg["detach_reset"], HAS_GS=gs is not None,
                    HAS_GVSEQ=gvseq is not None, HAS_GULAST=gulast is not None, HAS_GVLAST=gvlast is not None,
                    SAVED_Z=ctx.saved_z, BLOCK=block, **_launch_kw(h, block))
        else:
            gu0.zero_()
            gv0.zero_()
        return gx, gu0, gv0, None


def cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate,
                      record_v=False):
    """Current-based LIF over ``[T, ...]`` (see :mod:`snn.kernels.cubalif`).

    Returns ``(spikes, u_last, v_last, v_seq | None)``."""
    _check(x_seq, u_init, v_init)
    shape = x_seq.shape
    T, N = shape[0], math.prod(shape[1:])
    x = x_seq.contiguous().view(T, N)
    u0, v0 = _flat_state(u_init, x_seq, N), _flat_state(v_init, x_seq, N)
    cfg = {"du": float(du), "dv": float(dv), "bias": float(bias), "v_threshold": float(v_threshold),
           "detach_reset": bool(detach_reset), "record_v": bool(record_v), **_surrogate_cfg(surrogate)}
    out = _CUBALIFFunction.apply(x, u0, v0, cfg)
    spikes, u_last, v_last = out[0].view(shape), out[1].view(shape[1:]), out[2].view(shape[1:])
    return spikes, u_last, v_last, (out[3].view(shape) if record_v else None)
