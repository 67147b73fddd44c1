"""The ``cpp`` backend: the generic fused multi-step loops of ``csrc/`` (``snn._C``) over a spec's C++ step.

One :class:`torch.autograd.Function` serves every neuron spec: its forward runs the whole time loop in one
call (``csrc/cpu/scan.h`` on CPU tensors, ``csrc/cuda/scan.cuh`` on CUDA tensors when ``snn._C`` was built
with CUDA: the device is the tensor's), its backward the reverse time loop. Built-in neurons are compiled
into ``snn._C``; a user's spec with ``CppStep(source=...)`` is compiled on first use (:mod:`.compile`). The
results equal the torch reference (:mod:`snn.functional.scan`): spikes bit-identical, states and gradients
to rounding.

* dtypes: float32 and float64 run natively; float16/bfloat16 inputs are computed with float32 state (the
  input is upcast; spikes and the recorded state are cast back to the input dtype, the returned states stay
  float32 so that the next call continues exactly where a multi-step run would:
  :func:`snn.functional.state_dtype`).
* threshold: ``strict_threshold=True`` fires on ``H > θ`` (a compile-time variant of the loops); CUBALIF is
  always strict.
* memory: without gradients nothing is saved; with gradients the forward saves the spec's ``kSaved``
  values per step (``m = H - θ`` first; ALIF also its threshold state), in the compute dtype; with a
  learnable parameter (PLIF) it also keeps the input.
* threads: ``torch.get_num_threads()`` OpenMP threads, one contiguous block of neurons each (fewer for small
  problems), the time loop inside each block, walked in chunks of 1024 neurons; parameter gradients are
  reduced from per-chunk partial sums in order (deterministic for any thread count). Outputs of 48 MiB or
  more (above L3) are written with non-temporal (streaming) stores, smaller ones with ordinary stores so the
  next layer finds them in cache (``csrc/cpu/chunks.h``, ``parallel.h``).
* shared machines: with more runnable threads than cores, OpenMP's spin-waiting threads make every parallel
  region (ours and torch's) wait for a descheduled thread; set ``OMP_WAIT_POLICY=passive`` before Python
  starts there (measured: ``snn demo`` under load average 4 on 2 cores, 31.7 s of training with the default
  policy, 6.6 s passive; idle: 1.2 s default, 2.6 s passive).
* page faults: a fresh multi-megabyte output from glibc's ``malloc`` is a new ``mmap`` whose pages fault on
  first touch, one 4 KiB page at a time (about 20 ms per 64 MB here, more than the kernel itself). The loops'
  own outputs of 4 MiB or more are advised to be backed by 2 MiB transparent huge pages before they are
  written (``csrc/cpu/fresh.h``; this touches only those buffers; ``SNN_HUGE_PAGES=0`` turns it off).
  A process-wide alternative is opt-in: ``SNN_MALLOC_TUNE=1`` in the environment (or :func:`tune_malloc`)
  raises glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB (``mallopt``), so that large freed
  buffers stay in the heap and are recycled for every allocation of the process, the user's tensors included
  (the process then keeps up to ~1 GiB of freed memory instead of returning it). :func:`malloc_tuned` says
  whether it is active.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import warnings
from dataclasses import dataclass

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ..functional import state_dtype
from ..neurons.spec import SpecError
from .inputs import check_input, check_surrogate, flat_state, kernel_params, needs_grad
from .library import param_tensor, spec_key, spec_of_key

try:  # the compiled extension; absent until `make build`
    from .. import _C
except ImportError:  # pragma: no cover - depends on the build
    _C = None

NAME = "cpp"

__all__ = ["NAME", "is_available", "supports", "cuda_built", "run", "kernel", "Kernel", "tune_malloc",
           "malloc_tuned"]


def is_available() -> bool:
    return _C is not None


def cuda_built() -> bool:
    """Whether ``snn._C`` runs CUDA tensors here (built with CUDA, and a GPU visible)."""
    return _C is not None and bool(getattr(_C, "with_cuda", False)) and torch.cuda.is_available()


def supports(spec, device) -> str | None:
    """Why this backend cannot run ``spec`` on ``device`` (None: it can)."""
    if spec.cpp is None:
        return f"the neuron spec {spec.name!r} has no C++ step (CppStep)"
    device = torch.device(device)
    if device.type == "cuda":
        if spec.cpp.header is None:
            return (f"the C++ step of {spec.name!r} is compiled on first use for the CPU only; run CUDA tensors on "
                    f"backend='triton'")
        if not cuda_built():
            return "snn._C was built without CUDA (rebuild with a CUDA torch and nvcc: make build)"
        return None
    return None if device.type == "cpu" else f"it cannot run tensors on {device}"


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


def env_switch(name: str, default: bool) -> bool:
    """An on/off environment variable: unset -> ``default``, ``'1'`` on, ``'0'`` off; any other value keeps the
    default with a warning naming the variable (a typo must not silently flip an allocator setting)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value in ("0", "1"):
        return value == "1"
    warnings.warn(f"environment variable {name}={value!r} is not understood (accepted: 1 = on, 0 = off); using "
                  f"the default ({'on' if default else 'off'})", RuntimeWarning, stacklevel=2)
    return default


# csrc/cpu/fresh.h reads SNN_HUGE_PAGES itself (only '0' turns the advice off); checked here for typos.
env_switch("SNN_HUGE_PAGES", True)
if _C is not None and env_switch("SNN_MALLOC_TUNE", False):
    tune_malloc()


# --------------------------------------------------------------------------------- the compiled step
class Kernel:
    """The compiled forward/backward of one step functor (``<functor>_forward`` ... on ``module``), checked
    against its spec (the sizes the functor declares must be the spec's)."""

    def __init__(self, spec, module):
        name = spec.cpp.functor
        self.forward = getattr(module, f"{name}_forward")
        self.backward = getattr(module, f"{name}_backward")
        self.options = module.StepOptions
        info = getattr(module, f"{name}_info")()
        want = dict(states=len(spec.states), saved=spec.saved, params=len(spec.kernel_params),
                    learnable=spec.learnable, record=spec.record_index, flags=len(spec.kernel_flags))
        wrong = {k: (info[k], v) for k, v in want.items() if info[k] != v}
        if wrong:
            raise SpecError(f"neuron spec {spec.name!r}: its C++ functor {name} disagrees with it on "
                            + ", ".join(f"{k} (functor {a}, spec {b})" for k, (a, b) in wrong.items()))
        self.states = info["states"]


_KERNELS: dict = {}  # id(spec) -> (spec, Kernel); the spec is held so that its id stays its own


def kernel(spec) -> Kernel:
    """The :class:`Kernel` of ``spec``: from ``snn._C`` for a built-in functor, else compiled on first use."""
    hit = _KERNELS.get(id(spec))
    if hit is not None:
        return hit[1]
    if spec.cpp.header is None:
        from .compile import load
        module = load(spec)
    elif _C is not None and hasattr(_C, f"{spec.cpp.functor}_forward"):
        module = _C
    else:
        raise SpecError(f"neuron spec {spec.name!r}: snn._C has no functor {spec.cpp.functor} (is "
                        f"{spec.cpp.header} listed in csrc/neurons/builtin.h? rebuild with make build)")
    k = Kernel(spec, module)
    _KERNELS[id(spec)] = (spec, k)
    return k


_CACHE: dict = {}


def _cached(key, make):
    """``make()`` once per ``key`` (parameter blocks and options recur from call to call: no allocation each)."""
    value = _CACHE.get(key)
    if value is None:
        if len(_CACHE) > 512:
            _CACHE.clear()
        value = _CACHE[key] = make()
    return value


@dataclass(frozen=True)
class _Config:
    params: torch.Tensor  # float64 [kParams] on the CPU
    options: object       # the module's StepOptions
    record: bool


def _opt(t):
    """A gradient that autograd left as None (output unused) stays None; others contiguous."""
    return None if t is None else t.contiguous()


def _backward(k, params, options, g_s, g_last, g_vseq, saved, x, states0, want):
    """The fused backward: ``(∂L/∂x, ∂L/∂states0, ∂L/∂learnable (float64 [kLearnable]) | None)``; a gradient
    that autograd left as None is none here (no zero tensors), ``x`` is read only when ``want``."""
    g_s = torch.zeros_like(saved[0]) if g_s is None else g_s.contiguous()
    return k.backward(g_s, [_opt(g) for g in g_last], _opt(g_vseq), list(saved), x if want else None,
                      list(states0), params, options, want)


class NeuronFunction(torch.autograd.Function):
    """Any spec over ``[T, n]``: one fused forward call, one fused backward call.

    Inputs ``(kernel, cfg, x [T, n], *states0 [n], *learnable)``: the learnable parameters that need a
    gradient as tensors, the others None. Outputs ``(spikes, *states_last, v_seq)`` (``v_seq`` empty unless
    ``cfg.record``)."""

    @staticmethod
    def forward(ctx, k, cfg, x, *inputs):
        ctx.set_materialize_grads(False)  # unused outputs' gradients stay None: no zero tensors
        states0, learn = list(inputs[:k.states]), inputs[k.states:]
        s, last, saved, v_seq = k.forward(x, states0, cfg.params, cfg.options, True, cfg.record)
        ctx.learn = [(t.shape, t.dtype) if t is not None else None for t in learn]
        ctx.save_for_backward(x if any(ctx.learn) else None, *states0, *saved)
        ctx.k, ctx.cfg = k, cfg
        return (s, *last, v_seq if cfg.record else x.new_empty(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, *grads):
        k, cfg = ctx.k, ctx.cfg
        x, *rest = ctx.saved_tensors
        states0, saved = rest[:k.states], rest[k.states:]
        want = any(need and meta for need, meta in zip(ctx.needs_input_grad[3 + k.states:], ctx.learn))
        gx, g0, gp = _backward(k, cfg.params, cfg.options, g_s, grads[:-1], grads[-1] if cfg.record else None,
                               saved, x, states0, want)
        g_learn = [gp[j].reshape(meta[0]).to(meta[1]) if want and meta else None for j, meta in enumerate(ctx.learn)]
        return (None, None, gx, *g0, *g_learn)


# --------------------------------------------------------------------------------- torch.compile: custom ops
# Under torch.compile the fused loops run as the custom ops snn::cpp_scan / snn::cpp_scan_backward (the same
# kernel calls as NeuronFunction, opaque to the compiler; shapes from their fake implementations). The spec
# travels as a string key and the parameter block as a float64 CPU tensor built in the graph (snn.ops.library).
# Eager calls keep NeuronFunction, whose per-call cost is lower.
Tensor = torch.Tensor


def _op_kernel(key: str, opts: tuple):
    k = kernel(spec_of_key(key))
    return k, _cached((k, *opts), lambda: k.options(*opts))


@torch.library.custom_op("snn::cpp_scan", mutates_args=())
def _scan_op(x: Tensor, states0: list[Tensor], params: Tensor, spec: str, flags: int, strict: bool,
             detach_reset: bool, kind: int, a: float, c: float, record: bool, save: bool) -> list[Tensor]:
    """``[spikes, *states_last, *saved (kSaved when save, else none), v_seq (empty unless record)]``."""
    k, options = _op_kernel(spec, (flags, strict, detach_reset, kind, a, c))
    s, last, saved, v_seq = k.forward(x.contiguous(), [t.contiguous() for t in states0], params.contiguous(),
                                      options, save, record)
    return [s, *last, *saved, v_seq if record else x.new_empty(0)]


@_scan_op.register_fake
def _scan_fake(x, states0, params, spec, flags, strict, detach_reset, kind, a, c, record, save):
    saved = spec_of_key(spec).saved if save else 0
    return [torch.empty_like(x), *(torch.empty_like(t) for t in states0), *(torch.empty_like(x) for _ in range(saved)),
            torch.empty_like(x) if record else x.new_empty(0)]


@torch.library.custom_op("snn::cpp_scan_backward", mutates_args=())
def _scan_backward_op(g_s: Optional[Tensor], g_last: list[Optional[Tensor]], g_vseq: Optional[Tensor],
                      saved: list[Tensor], x: Optional[Tensor], states0: list[Tensor], params: Tensor, spec: str,
                      flags: int, strict: bool, detach_reset: bool, kind: int, a: float, c: float,
                      want: bool) -> list[Tensor]:
    """``[∂L/∂x, *∂L/∂states0, ∂L/∂params (float64 like params when want, else empty)]``."""
    k, options = _op_kernel(spec, (flags, strict, detach_reset, kind, a, c))
    gx, g0, gp = _backward(k, params.contiguous(), options, g_s, g_last, g_vseq, saved, x, states0, want)
    g_params = params.new_zeros(params.shape if want else (0,))
    if want:
        g_params[:gp.numel()] = gp.to(params.device)
    return [gx, *g0, g_params]


@_scan_backward_op.register_fake
def _scan_backward_fake(g_s, g_last, g_vseq, saved, x, states0, params, spec, flags, strict, detach_reset, kind,
                        a, c, want):
    return [torch.empty_like(saved[0]), *(torch.empty_like(t) for t in states0),
            params.new_empty(params.shape if want else (0,))]


def _scan_setup(ctx, inputs, output):
    x, states0, params, spec, *opts, record, save = inputs
    ctx.set_materialize_grads(False)
    ns = len(states0)
    ctx.meta = (spec, tuple(opts), record, ns)
    saved = output[1 + ns:len(output) - 1]
    ctx.save_for_backward(x if params.requires_grad else None, params, *states0, *saved)


def _scan_grad(ctx, grads):
    spec, opts, record, ns = ctx.meta
    x, params, *rest = ctx.saved_tensors
    want = x is not None and ctx.needs_input_grad[2]
    out = torch.ops.snn.cpp_scan_backward(grads[0], list(grads[1:1 + ns]), grads[-1] if record else None,
                                          rest[ns:], x if want else None, rest[:ns], params, spec, *opts, want)
    return (out[0], list(out[1:1 + ns]), out[-1] if want else None) + (None,) * 9


_scan_op.register_autograd(_scan_grad, setup_context=_scan_setup)


def _run_traced(spec, x, st0, params, opts, record):
    """The fused loops as the custom op (under torch.compile) -> ``(spikes, states_last, v_seq)`` flat."""
    out = torch.ops.snn.cpp_scan(x, st0, params, spec_key(spec), *opts, record, needs_grad(x, *st0, params))
    return out[0], out[1:1 + len(st0)], out[-1]


def run(spec, x_seq, states, params, flags, *, surrogate, detach_reset, strict_threshold, record_v):
    """``spec`` over ``x_seq [T, ...]`` -> ``(spikes, states_last, v_seq | None)``; equals
    :func:`snn.functional.scan.multistep`. Under torch.compile it runs as the custom op ``snn::cpp_scan``."""
    who = f"{spec.name}(backend='cpp')"
    check_input(x_seq, who)
    kind, a, c = check_surrogate(surrogate, who)
    compiling = torch.compiler.is_compiling()
    if compiling:
        block = param_tensor(spec, params, who, "cpu")
    else:
        values, learn = kernel_params(spec, params, who)
        k = kernel(spec)
    dt = state_dtype(x_seq.dtype)
    T, n = x_seq.shape[0], math.prod(x_seq.shape[1:])
    x = x_seq.to(dt).reshape(T, n).contiguous()
    st0 = [flat_state(s, x_seq, dt, f"{st.name}_init", who) for s, st in zip(states, spec.states)]
    opts = (sum(1 << i for i, f in enumerate(flags) if f), spec.strict(strict_threshold), bool(detach_reset), kind,
            a, c)
    if compiling:
        s, last, v_seq = _run_traced(spec, x, st0, block, opts, bool(record_v))
    else:
        cfg = _Config(_cached(tuple(map(float.hex, values)), lambda: torch.tensor(values, dtype=torch.float64)),
                      _cached((k, *opts), lambda: k.options(*opts)), bool(record_v))
        if needs_grad(x, *st0, *learn):
            s, *last, v_seq = NeuronFunction.apply(k, cfg, x, *st0, *learn)
        else:
            s, last, _, v_seq = k.forward(x, st0, cfg.params, cfg.options, False, cfg.record)
    io, step = x_seq.dtype, x_seq.shape[1:]
    return (s.reshape(x_seq.shape).to(io), tuple(st.reshape(step) for st in last),
            v_seq.reshape(x_seq.shape).to(io) if record_v else None)
