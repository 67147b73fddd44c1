"""Dispatch of the neuron dynamics to a kernel backend.

Every neuron module calls one of :func:`lif_multistep`, :func:`alif_multistep` or
:func:`cubalif_multistep`. ``backend`` is ``'auto'`` or one of
``'torch' | 'cpp' | 'cuda' | 'triton'``. Naming a backend that is not available,
or that cannot run the tensor's device, is an error, never a silent fallback.
``'auto'`` picks the fastest available one for the device: cpp on CPU tensors,
cuda (then triton) on CUDA tensors, torch otherwise; :func:`resolve_backend`
says which.

All backends share one signature per family (``x_seq`` is ``[T, ...]``)::

    lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input,
                  detach_reset, surrogate, record_v=False, strict_threshold=False)
                  -> (spikes, v_last, v_seq | None)
    alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset,
                   decay_input, detach_reset, surrogate, record_v=False, strict_threshold=False)
                   -> (spikes, v_last, b_last, v_seq | None)
    cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset,
                      surrogate, record_v=False) -> (spikes, u_last, v_last, v_seq | None)

Precision: the states are computed and returned in :func:`snn.functional.state_dtype` of the
input (float32 for float16/bfloat16 inputs, float64 for float64); spikes and the recorded
``v_seq`` come back in the input dtype. A 16-bit input therefore gives the same spikes on every
backend, and a state passed back in (single-step use) continues exactly as one multi-step call.

Threshold comparison: IF/LIF/PLIF/ALIF fire on ``H >= V_th`` by default (SpikingJelly's
convention) and on ``H > V_th`` with ``strict_threshold=True`` (NIR, Norse, snnTorch);
CUBALIF always fires on ``V > V_th`` (Lava/Loihi), so its ``strict_threshold`` may only be True.
"""
from __future__ import annotations

import importlib

import torch

__all__ = ["BACKENDS", "available_backends", "resolve_backend", "get_backend",
           "lif_multistep", "alif_multistep", "cubalif_multistep"]

BACKENDS = ("torch", "cpp", "cuda", "triton")
_MODULES = {"torch": "torch_backend", "cpp": "cpp_backend", "cuda": "cuda_backend", "triton": "triton_backend"}
# Preference order of 'auto' per device type (set from benchmarks/RESULTS.md).
_AUTO_ORDER = {"cpu": ("cpp", "torch"), "cuda": ("cuda", "triton", "torch")}
_loaded: dict = {}


def _module(name: str):
    """Import a backend module lazily; ``None`` when its code or compiled part is missing."""
    if name not in _loaded:
        try:
            mod = importlib.import_module(f".{_MODULES[name]}", __name__)
            _loaded[name] = mod if mod.is_available() else None
        except ImportError:
            _loaded[name] = None
    return _loaded[name]


def available_backends() -> list[str]:
    """Names of the backends that can run here (``'torch'`` always)."""
    return [b for b in BACKENDS if _module(b) is not None]


def resolve_backend(backend: str, x: torch.Tensor, family: str = "lif") -> str:
    """Return the backend name that will run ``family`` on tensor ``x``; raise a clear error if none can."""
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; accepted: 'auto' or one of {BACKENDS}")
    if backend == "auto":
        for name in _AUTO_ORDER.get(x.device.type, ("torch",)):
            mod = _module(name)
            if mod is not None and family in mod.FAMILIES and mod.supports_device(x.device):
                return name
        return "torch"
    mod = _module(backend)
    if mod is None:
        raise RuntimeError(f"backend {backend!r} is not available here (available: {available_backends()}); "
                           f"build the extension with `make build` or pick another backend")
    if family not in mod.FAMILIES:
        raise RuntimeError(f"backend {backend!r} does not implement the {family} family (it has {mod.FAMILIES})")
    if not mod.supports_device(x.device):
        raise RuntimeError(f"backend {backend!r} cannot run tensors on {x.device}")
    return backend


def get_backend(name: str):
    """The backend module for an available backend name."""
    mod = _module(name)
    if mod is None:
        raise RuntimeError(f"backend {name!r} is not available (available: {available_backends()})")
    return mod


def lif_multistep(x_seq, v_init, decay, *, backend: str = "auto", **kw):
    """IF/LIF/PLIF over ``[T, ...]``. See :mod:`snn.functional.lif` for the equations.

    ``strict_threshold=True`` fires on H > V_th instead of H >= V_th."""
    return get_backend(resolve_backend(backend, x_seq, "lif")).lif_multistep(x_seq, v_init, decay, **kw)


def alif_multistep(x_seq, v_init, b_init, decay, *, backend: str = "auto", **kw):
    """Adaptive LIF over ``[T, ...]``. See :mod:`snn.functional.alif`.

    ``strict_threshold=True`` fires on H > V_th + beta·A instead of H >= V_th + beta·A."""
    return get_backend(resolve_backend(backend, x_seq, "alif")).alif_multistep(x_seq, v_init, b_init, decay, **kw)


def cubalif_multistep(x_seq, u_init, v_init, *, backend: str = "auto", strict_threshold: bool = True, **kw):
    """Current-based LIF (Loihi) over ``[T, ...]``. See :mod:`snn.functional.cubalif`.

    It always fires on V > V_th (Lava's comparison): ``strict_threshold`` may only be True."""
    if strict_threshold is not True:
        raise ValueError(f"cubalif_multistep: strict_threshold must be True (CUBALIF fires on V > V_th, as "
                         f"Lava/Loihi do), got {strict_threshold!r}")
    return get_backend(resolve_backend(backend, x_seq, "cubalif")).cubalif_multistep(x_seq, u_init, v_init, **kw)
