"""Dispatch of the neuron dynamics to a kernel backend.

Every neuron module calls :func:`run` with its spec (:mod:`snn.neurons`), its initial states and its kernel
parameter block; ``backend`` is ``'auto'`` or one of ``'torch' | 'cpp' | 'cuda' | 'triton'``:

* ``torch``: the reference scan under autograd (every spec, every device);
* ``cpp``: the fused loops of ``snn._C`` over the spec's C++ step, on the tensor's device (CPU, or CUDA when
  ``snn._C`` was built with CUDA); ``cuda`` names the same backend and requires CUDA tensors;
* ``triton``: the generic Triton skeleton over the spec's Triton step (CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1``).

Naming a backend that is not available, that cannot run the tensor's device or that the spec has no step
for is an error naming the spec, never a silent fallback. ``'auto'`` picks the fastest one for the device
(cpp on CPU tensors; cuda, then triton on CUDA tensors; torch otherwise); :func:`resolve_backend` says which.

torch.compile: ``torch.compile(model, fullgraph=True)`` traces a model with snn neurons without a graph break.
The ``cpp``/``cuda`` and ``triton`` kernels then run as the torch custom ops ``snn::cpp_scan`` and
``snn::triton_scan`` (fake kernels for the shapes, autograd registered; :mod:`snn.ops.library`), the ``torch``
backend is traced as it is; spikes equal eager's. A spec must be registered under its name to be compiled.

Precision: the states are computed and returned in :func:`snn.functional.state_dtype` of the input
(float32 for float16/bfloat16 inputs, float64 for float64); spikes and the recorded state come back in the
input dtype. A 16-bit input therefore gives the same spikes on every backend, and a state passed back in
(single-step use) continues exactly as one multi-step call. T = 0 passes the state through.

The per-family entry points :func:`lif_multistep`, :func:`alif_multistep`, :func:`cubalif_multistep` take
the kernel parameters by name (as tools and tests call the dynamics directly)::

    lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False) -> (spikes, v_last, v_seq | None)
    alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input,
                   detach_reset, surrogate, record_v=False, strict_threshold=False)
                   -> (spikes, v_last, b_last, v_seq | None)
    cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate,
                      record_v=False) -> (spikes, u_last, v_last, v_seq | None)
"""
from __future__ import annotations

import torch

from .. import neurons
from . import cpp_backend, torch_backend, triton_backend

__all__ = ["BACKENDS", "available_backends", "resolve_backend", "get_backend", "run", "lif_multistep",
           "alif_multistep", "cubalif_multistep"]

BACKENDS = ("torch", "cpp", "cuda", "triton")
# The backend modules import nothing heavy (triton itself is imported by triton_backend.is_available()); they are
# imported here, not on first use, so that torch.compile traces a neuron's first call without an import.
_MODULES = {"torch": torch_backend, "cpp": cpp_backend, "cuda": cpp_backend, "triton": triton_backend}
# Preference order of 'auto' per device type.
_AUTO_ORDER = {"cpu": ("cpp", "torch"), "cuda": ("cuda", "triton", "torch")}
_loaded: dict = {}


def _module(name: str):
    """The backend module of ``name``; ``None`` when it cannot run here (its compiled part or triton missing)."""
    if name not in _loaded:
        mod = _MODULES[name]
        ok = mod.is_available() and (name != "cuda" or mod.cuda_built())
        _loaded[name] = mod if ok else None
    return _loaded[name]


def available_backends() -> list[str]:
    """Names of the backends that can run here (``'torch'`` always)."""
    return [b for b in BACKENDS if _module(b) is not None]


def _refusal(name: str, mod, spec, device) -> str | None:
    """Why backend ``name`` cannot run ``spec`` on ``device`` (None: it can)."""
    if name == "cuda" and device.type != "cuda":
        return f"the cuda backend runs CUDA tensors, got tensors on {device}"
    return mod.supports(spec, device)


def _spec(spec):
    return neurons.get(spec) if isinstance(spec, str) else spec


def resolve_backend(backend: str, x: torch.Tensor, spec="lif") -> str:
    """The backend that will run ``spec`` (a spec or its registered name) on tensor ``x``; a clear error
    naming the spec when none can."""
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; accepted: 'auto' or one of {BACKENDS}")
    spec = _spec(spec)
    device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    if backend == "auto":
        for name in _AUTO_ORDER.get(device.type, ("torch",)):
            mod = _module(name)
            if mod is not None and _refusal(name, mod, spec, device) is None:
                return name
        return "torch"
    mod = _module(backend)
    if mod is None:
        raise RuntimeError(f"backend {backend!r} is not available here (available: {available_backends()}); "
                           f"build the extension with `make build` or pick another backend")
    why = _refusal(backend, mod, spec, device)
    if why is not None:
        raise RuntimeError(f"backend {backend!r} cannot run the {spec.name} neuron: {why}")
    return backend


def get_backend(name: str):
    """The backend module for an available backend name."""
    mod = _module(name)
    if mod is None:
        raise RuntimeError(f"backend {name!r} is not available (available: {available_backends()})")
    return mod


def run(spec, x_seq, states, params, flags=(), *, surrogate, detach_reset=False, strict_threshold=False,
        record_v=False, backend: str = "auto"):
    """``spec`` over ``x_seq [T, ...]`` from ``states`` (one per spec state) with the kernel parameter block
    ``params`` and ``flags`` (:meth:`snn.neurons.NeuronSpec.kernel`) -> ``(spikes, states_last, v_seq | None)``.

    ``strict_threshold=True`` fires on H > θ instead of H >= θ (a spec that is always strict ignores it)."""
    spec = _spec(spec)
    mod = get_backend(resolve_backend(backend, x_seq, spec))
    return mod.run(spec, x_seq, tuple(states), tuple(params), tuple(flags), surrogate=surrogate,
                   detach_reset=detach_reset, strict_threshold=strict_threshold, record_v=record_v)


def _lif_kernel(decay, v_threshold, v_reset, decay_input):
    hard = v_reset is not None
    return (decay, v_threshold, v_reset if hard else 0.0), (hard, decay_input)


def lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False, backend: str = "auto"):
    """IF/LIF/PLIF over ``[T, ...]`` (:mod:`snn.neurons.lif`) -> ``(spikes, v_last, v_seq | None)``.

    ``strict_threshold=True`` fires on H > V_th instead of H >= V_th."""
    params, flags = _lif_kernel(decay, v_threshold, v_reset, decay_input)
    s, (v,), v_seq = run("lif", x_seq, (v_init,), params, flags, surrogate=surrogate, detach_reset=detach_reset,
                         strict_threshold=strict_threshold, record_v=record_v, backend=backend)
    return s, v, v_seq


def alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input, detach_reset,
                   surrogate, record_v=False, strict_threshold=False, backend: str = "auto"):
    """Adaptive LIF over ``[T, ...]`` (:mod:`snn.neurons.alif`) -> ``(spikes, v_last, b_last, v_seq | None)``.

    ``strict_threshold=True`` fires on H > V_th + beta·A instead of H >= V_th + beta·A."""
    (d, vth, vr), flags = _lif_kernel(decay, v_threshold, v_reset, decay_input)
    s, (v, b), v_seq = run("alif", x_seq, (v_init, b_init), (d, vth, vr, rho, beta), flags, surrogate=surrogate,
                           detach_reset=detach_reset, strict_threshold=strict_threshold, record_v=record_v,
                           backend=backend)
    return s, v, b, v_seq


def cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate,
                      record_v=False, strict_threshold: bool = True, backend: str = "auto"):
    """Current-based LIF (Loihi) over ``[T, ...]`` (:mod:`snn.neurons.cubalif`) ->
    ``(spikes, u_last, v_last, v_seq | None)``.

    It always fires on V > V_th (Lava's comparison): ``strict_threshold`` may only be True."""
    if strict_threshold is not True:
        raise ValueError(f"cubalif_multistep: strict_threshold must be True (CUBALIF fires on V > V_th, as "
                         f"Lava/Loihi do), got {strict_threshold!r}")
    if isinstance(bias, torch.Tensor) and bias.requires_grad:
        raise ValueError("cubalif_multistep: bias must be a python float (or a one-element tensor without gradient)")
    params = (1.0 - float(du), 1.0 - float(dv), v_threshold, bias)
    s, (u, v), v_seq = run("cubalif", x_seq, (u_init, v_init), params, surrogate=surrogate,
                           detach_reset=detach_reset, record_v=record_v, backend=backend)
    return s, u, v, v_seq
