"""Argument checks and layout shared by the kernel backends (:mod:`.cpp_backend`, :mod:`.triton_backend`):
what every backend refuses the same way, before any work starts."""
from __future__ import annotations

import math

import torch

__all__ = ["check_input", "check_surrogate", "flat_state", "param_slots", "kernel_params", "needs_grad"]


def check_input(x_seq, who: str) -> None:
    """``x_seq``: a floating tensor ``[T, ...]``."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"{who}: x_seq must be a torch.Tensor, got {type(x_seq).__name__}")
    if not x_seq.is_floating_point():
        raise TypeError(f"{who}: x_seq must be floating point (float16/bfloat16/float32/float64), got dtype "
                        f"{x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError(f"{who}: x_seq must be [T, ...] (rank >= 1), got a 0-dim tensor")


def check_surrogate(surrogate, who: str):
    """``(kind, a, c)`` of a spiking :class:`snn.surrogate.Surrogate` (``a, c``: its kernel constants)."""
    from ..surrogate import Surrogate
    if not isinstance(surrogate, Surrogate) or surrogate.kind < 0:
        raise TypeError(f"{who}: surrogate must be a snn.surrogate.Surrogate with a kernel kind, got {surrogate!r}")
    if not surrogate.spiking:
        raise ValueError(f"{who}: {surrogate!r} is the smooth (spiking=False) relaxation, which only the torch "
                         f"backend runs; use backend='torch' or a spiking surrogate")
    a, c = surrogate.kernel_constants()
    return int(surrogate.kind), float(a), float(c)


def flat_state(s, x_seq: torch.Tensor, dtype: torch.dtype, name: str, who: str) -> torch.Tensor:
    """A state (tensor or number) broadcastable to one step of ``x_seq`` -> contiguous ``[n]`` of ``dtype``."""
    step = x_seq.shape[1:]
    if not isinstance(s, torch.Tensor):
        s = torch.as_tensor(float(s), dtype=dtype, device=x_seq.device)
    if s.device != x_seq.device:
        raise ValueError(f"{who}: {name} is on {s.device} but x_seq is on {x_seq.device}")
    try:
        s = s.expand(step)
    except RuntimeError:
        raise ValueError(f"{who}: {name} of shape {tuple(s.shape)} does not match one step of x_seq "
                         f"{tuple(step)}") from None
    return s.to(dtype).reshape(-1).contiguous()


def param_slots(spec, params, who: str) -> list[tuple[int, str, object]]:
    """The kernel parameters as ``(index, name, value)``, after the checks that read no tensor's value: the
    count; a tensor has one element and a gradient only in a learnable slot; a number is finite (as a float)."""
    if len(params) != len(spec.kernel_params):
        raise ValueError(f"{who}: {spec.name} takes {len(spec.kernel_params)} kernel parameters "
                         f"{spec.kernel_params}, got {len(params)}")
    slots = []
    for i, (name, p) in enumerate(zip(spec.kernel_params, params)):
        if isinstance(p, torch.Tensor):
            if p.numel() != 1:
                raise ValueError(f"{who}: {name} must be a float or a one-element tensor (one value per layer), "
                                 f"got shape {tuple(p.shape)}")
            if p.requires_grad and i >= spec.learnable:
                raise ValueError(f"{who}: {name} of {spec.name} is not learnable; pass it without a gradient")
        else:
            p = float(p)
            if not math.isfinite(p):
                raise ValueError(f"{who}: {name} must be finite, got {p}")
        slots.append((i, name, p))
    return slots


def kernel_params(spec, params, who: str) -> tuple[list[float], list]:
    """The parameter block as floats, and per learnable slot the tensor that needs a gradient (else None).

    A learnable parameter may be a float or a one-element tensor; the others must be numbers (or one-element
    tensors without a gradient); all finite."""
    values, learn = [], []
    for i, name, p in param_slots(spec, params, who):
        value = float(p.detach()) if isinstance(p, torch.Tensor) else p
        if not math.isfinite(value):
            raise ValueError(f"{who}: {name} must be finite, got {value}")
        values.append(value)
        if i < spec.learnable:
            learn.append(p if isinstance(p, torch.Tensor) and p.requires_grad else None)
    return values, learn


def needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)
