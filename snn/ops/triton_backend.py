"""The ``triton`` backend: the generic skeleton of ``kernels/scan.py`` (the package :mod:`snn.kernels`) over a
spec's Triton step.

Available when ``triton`` imports and either CUDA is present or ``TRITON_INTERPRET=1`` is set (the Triton
interpreter then runs the same kernels on CPU tensors, slowly: that is how CI tests them). One
``torch.autograd.Function`` serves every spec; gradients flow to ``x_seq``, the initial states and the
learnable parameters (PLIF's decay) when they require grad.

Inputs may be non-contiguous (they are made contiguous), ``T`` may be 0 or 1, the neuron count ``N`` anything
(also 0). float16/bfloat16 inputs keep a float32 state inside the kernels and between calls (the initial and
returned states are float32, :func:`snn.functional.state_dtype`; spikes and the recorded state come back in
the input dtype; the values saved for the backward are 16-bit, the spikes read back from the output); float64
runs in float64. Triton is imported on first use, so importing this module never needs it.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ..functional import state_dtype
from .inputs import check_input, check_surrogate, flat_state, kernel_params, needs_grad
from .library import param_tensor, spec_key, spec_of_key

NAME = "triton"
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


def supports(spec, device) -> str | None:
    """Why this backend cannot run ``spec`` on ``device`` (None: it can)."""
    if spec.triton is None:
        return f"the neuron spec {spec.name!r} has no Triton step (TritonStep)"
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return None
    if device.type == "cpu" and _interpret():
        return None
    return f"it runs CUDA tensors, or CPU tensors with TRITON_INTERPRET=1; got tensors on {device}"


# -- launch helpers --------------------------------------------------------------------------------------
_SMS: dict = {}


def _cdiv(a, b):
    return (a + b - 1) // b


def _block(x, N) -> int:
    """Neurons per program: up to 1024, fewer when ``N`` is small so that every SM gets work
    (the time loop is sequential, so the neurons are the only parallelism)."""
    if BLOCK is not None:
        return int(BLOCK)
    if not x.is_cuda:
        return 256
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


def _cdt(dtype):
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


_PARAMS: dict = {}


def _params(device, vals) -> torch.Tensor:
    """A float64 tensor of the parameter block on ``device``, cached (no host-to-device copy per call)."""
    key = (str(device), tuple(vals))
    p = _PARAMS.get(key)
    if p is None:
        if len(_PARAMS) > 512:
            _PARAMS.clear()
        p = torch.tensor(vals, dtype=torch.float64, device=device)
        _PARAMS[key] = p
    return p


@dataclass(frozen=True)
class _Config:
    spec: object
    step: object      # the spec's TritonStep
    params: torch.Tensor  # float64 on the device: the parameter block, then the surrogate's (a, c)
    flags: int
    strict: bool
    keep: bool        # not detach_reset
    kind: int
    record: bool


def _forward(cfg, x, st0, need):
    """The forward kernel over ``x [T, N]`` from ``st0 [NS, N]`` -> ``(spikes, states_last [NS, N], v_seq (empty
    unless recorded), sv [NV, T, N] (None unless need: the values saved for the backward))``."""
    from ..kernels import scan
    spec = cfg.spec
    T, N = x.shape
    NS, NV = len(spec.states), spec.saved
    spikes = torch.empty_like(x)
    last = torch.empty_like(st0)
    v_seq = torch.empty_like(x) if cfg.record else x.new_empty(0)
    sv = torch.empty((NV, T, N), dtype=x.dtype, device=x.device) if need else None
    block = _block(x, N)
    if N > 0:
        with _guard(x):
            scan.forward_kernel[(_cdiv(N, block),)](
                x, st0, cfg.params, spikes, last, v_seq if cfg.record else spikes, sv if need else spikes,
                T, N, T * N, CHARGE=cfg.step.charge, RESET=cfg.step.reset, NS=NS, NV=NV,
                NP=len(spec.kernel_params), RECORD=spec.record_index, FLAGS=cfg.flags, STRICT=cfg.strict,
                CDT=_cdt(st0.dtype), RECORD_V=cfg.record, SAVE=need, BLOCK=block, **_launch_kw(x, block))
    else:
        last.copy_(st0)
    return spikes, last, v_seq, sv


def _backward(cfg, sv, s, x, st0, gs, glast, gvseq, learn, low):
    """The backward kernel -> ``(∂L/∂x [T, N], ∂L/∂st0 [NS, N], per-program partial ∂L/∂learnable (float64
    [NL, programs]) | None)``; ``s``: the forward's spikes (16-bit inputs), ``x``: the input (``learn``)."""
    from ..kernels import scan
    spec = cfg.spec
    NV, T, N = sv.shape
    NS, NL = len(spec.states), spec.learnable
    gx = torch.empty((T, N), dtype=sv.dtype, device=sv.device)
    g0 = torch.empty_like(st0)
    block = _block(sv, N)
    nprog = _cdiv(N, block)
    gp = torch.zeros((max(NL, 1), max(nprog, 1)), dtype=torch.float64, device=sv.device) if learn else None
    if N > 0 and T > 0:
        gs, glast = (g.contiguous() if g is not None else None for g in (gs, glast))
        gvseq = gvseq.contiguous() if gvseq is not None and cfg.record else None
        with _guard(sv):
            scan.backward_kernel[(nprog,)](
                sv, s if s is not None else sv, x if x is not None else sv, st0, cfg.params,
                gs if gs is not None else sv, gvseq if gvseq is not None else sv,
                glast if glast is not None else g0, gx, g0, gp if gp is not None else g0,
                T, N, T * N, (T - 1) * N,
                BACKWARD=cfg.step.backward, RESTORE=cfg.step.restore, NS=NS, NV=NV,
                NP=len(spec.kernel_params), NL=max(NL, 1), RECORD=spec.record_index, FLAGS=cfg.flags,
                STRICT=cfg.strict, KEEP=cfg.keep, KIND=cfg.kind, CDT=_cdt(st0.dtype), HAS_GS=gs is not None,
                HAS_GVSEQ=gvseq is not None, GLAST=(1 << NS) - 1 if glast is not None else 0,
                SAVED_LOW=low, LEARN=learn, BLOCK=block, **_launch_kw(sv, block))
    elif glast is not None:
        g0.copy_(glast)
    else:
        g0.zero_()
    return gx, g0, gp


def _is_low(dtype) -> bool:
    return dtype in (torch.float16, torch.bfloat16)


class NeuronFunction(torch.autograd.Function):
    """Any spec over ``[T, N]``: the forward and backward kernels of :mod:`snn.kernels.scan`.

    Inputs ``(cfg, x, states0 [NS, N], *learnable)`` (learnable parameters that need a gradient as tensors,
    the others None); outputs ``(spikes, states_last [NS, N], v_seq)`` (``v_seq`` empty unless recorded)."""

    @staticmethod
    def forward(ctx, cfg, x, st0, *learn):
        need = any(ctx.needs_input_grad[1:])
        spikes, last, v_seq, sv = _forward(cfg, x, st0, need)
        ctx.set_materialize_grads(False)
        if need:
            learned = [(i, t.shape, t.dtype) for i, t in enumerate(learn) if t is not None]
            low = _is_low(x.dtype)
            ctx.cfg, ctx.learned, ctx.low = cfg, learned, low
            ctx.save_for_backward(sv, spikes if low else None, x if learned else None, st0)
        return spikes, last, v_seq

    @staticmethod
    @once_differentiable
    def backward(ctx, gs, glast, gvseq):
        sv, s, x, st0 = ctx.saved_tensors
        learn = bool(ctx.learned) and any(ctx.needs_input_grad[3:])
        gx, g0, gp = _backward(ctx.cfg, sv, s, x, st0, gs, glast, gvseq, learn, ctx.low)
        g_learn = [None] * (len(ctx.needs_input_grad) - 3)
        if learn:
            for i, shape, dtype in ctx.learned:
                g_learn[i] = gp[i].sum().to(dtype).reshape(shape)
        return (None, gx, g0, *g_learn)


# -- torch.compile: custom ops ---------------------------------------------------------------------------
# Under torch.compile the kernels run as the custom ops snn::triton_scan / snn::triton_scan_backward (the same
# launches as NeuronFunction, opaque to the compiler; shapes from their fake implementations). The spec travels
# as a string key and the parameter block (then the surrogate's a, c) as a float64 tensor on the device, built
# in the graph (snn.ops.library). Tested on CUDA (and under TRITON_INTERPRET=1 where the GPU check runs it).
Tensor = torch.Tensor
_STEPS: dict = {}


def _op_config(key, params, flags, strict, keep, kind, record) -> _Config:
    spec = spec_of_key(key)
    step = _STEPS.get(key)
    if step is None:
        step = _STEPS[key] = spec.triton_step()
    return _Config(spec, step, params.contiguous(), flags, strict, keep, kind, record)


@torch.library.custom_op("snn::triton_scan", mutates_args=())
def _scan_op(x: Tensor, st0: Tensor, params: Tensor, spec: str, flags: int, strict: bool, keep: bool, kind: int,
             record: bool, save: bool) -> list[Tensor]:
    """``[spikes, states_last [NS, N], v_seq (empty unless record), sv [NV, T, N] (empty unless save)]``."""
    cfg = _op_config(spec, params, flags, strict, keep, kind, record)
    spikes, last, v_seq, sv = _forward(cfg, x.contiguous(), st0.contiguous(), save)
    return [spikes, last, v_seq, sv if save else x.new_empty(0)]


@_scan_op.register_fake
def _scan_fake(x, st0, params, spec, flags, strict, keep, kind, record, save):
    T, N = x.shape
    sv = x.new_empty((spec_of_key(spec).saved, T, N)) if save else x.new_empty(0)
    return [torch.empty_like(x), torch.empty_like(st0), torch.empty_like(x) if record else x.new_empty(0), sv]


@torch.library.custom_op("snn::triton_scan_backward", mutates_args=())
def _scan_backward_op(sv: Tensor, s: Optional[Tensor], x: Optional[Tensor], st0: Tensor, params: Tensor,
                      gs: Optional[Tensor], glast: Optional[Tensor], gvseq: Optional[Tensor], spec: str, flags: int,
                      strict: bool, keep: bool, kind: int, record: bool, learn: bool) -> list[Tensor]:
    """``[∂L/∂x, ∂L/∂st0, ∂L/∂params (float64 like params when learn, else empty)]``."""
    cfg = _op_config(spec, params, flags, strict, keep, kind, record)
    gx, g0, gp = _backward(cfg, sv, s, x, st0, gs, glast, gvseq, learn, _is_low(sv.dtype))
    g_params = params.new_zeros(params.shape if learn else (0,))
    if learn:
        g_params[:gp.shape[0]] = gp.sum(1)
    return [gx, g0, g_params]


@_scan_backward_op.register_fake
def _scan_backward_fake(sv, s, x, st0, params, gs, glast, gvseq, spec, flags, strict, keep, kind, record, learn):
    return [sv.new_empty(sv.shape[1:]), torch.empty_like(st0), params.new_empty(params.shape if learn else (0,))]


def _scan_setup(ctx, inputs, output):
    x, st0, params, spec, *opts, save = inputs
    ctx.set_materialize_grads(False)
    ctx.meta = (spec, tuple(opts))
    learn = params.requires_grad and bool(spec_of_key(spec).learnable)
    ctx.save_for_backward(output[3], output[0] if _is_low(x.dtype) else None, x if learn else None, st0, params)


def _scan_grad(ctx, grads):
    g_spikes, g_last, g_vseq, _ = grads
    spec, opts = ctx.meta
    sv, s, x, st0, params = ctx.saved_tensors
    learn = x is not None and ctx.needs_input_grad[2]
    gx, g0, gp = torch.ops.snn.triton_scan_backward(sv, s, x if learn else None, st0, params, g_spikes, g_last,
                                                    g_vseq, spec, *opts, learn)
    return (gx, g0, gp if learn else None) + (None,) * 7


_scan_op.register_autograd(_scan_grad, setup_context=_scan_setup)


def run(spec, x_seq, states, params, flags, *, surrogate, detach_reset, strict_threshold, record_v):
    """``spec`` over ``x_seq [T, ...]`` -> ``(spikes, states_last, v_seq | None)``; equals
    :func:`snn.functional.scan.multistep`. Under torch.compile it runs as the custom op ``snn::triton_scan``."""
    who = f"{spec.name}(backend='triton')"
    check_input(x_seq, who)
    if x_seq.dtype not in _DTYPES:
        raise TypeError(f"{who}: x_seq dtype {x_seq.dtype} is not supported (use one of {_DTYPES})")
    why = supports(spec, x_seq.device)
    if why is not None:
        raise RuntimeError(f"{who}: {why}")
    kind, a, c = check_surrogate(surrogate, who)
    shape = x_seq.shape
    T, N = shape[0], math.prod(shape[1:])
    x = x_seq.contiguous().view(T, N)
    sdt = state_dtype(x_seq.dtype)
    bits, strict = sum(1 << i for i, f in enumerate(flags) if f), spec.strict(strict_threshold)
    if torch.compiler.is_compiling():
        block = param_tensor(spec, params, who, x_seq.device, extra=(a, c))
        st0 = torch.stack([flat_state(s, x_seq, sdt, f"{st.name}_init", who) for s, st in zip(states, spec.states)])
        spikes, last, v_seq, _ = torch.ops.snn.triton_scan(x, st0, block, spec_key(spec), bits, strict,
                                                           not detach_reset, kind, bool(record_v),
                                                           needs_grad(x, st0, block))
    else:
        values, learn = kernel_params(spec, params, who)
        step = spec.triton_step()
        st0 = torch.stack([flat_state(s, x_seq, sdt, f"{st.name}_init", who) for s, st in zip(states, spec.states)])
        cfg = _Config(spec, step, _params(x_seq.device, (*values, a, c)), bits, strict, not detach_reset, kind,
                      bool(record_v))
        spikes, last, v_seq = NeuronFunction.apply(cfg, x, st0, *learn)
    return (spikes.view(shape), tuple(s.view(shape[1:]) for s in last.unbind(0)),
            v_seq.view(shape) if record_v else None)
