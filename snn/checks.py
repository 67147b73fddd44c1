"""Input validation shared by the modules: clear errors that say what was wrong and what is accepted."""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

__all__ = ["set_finite_checks", "finite_checks_enabled", "finite_checks", "all_finite", "check_sequence",
           "check_positive", "check_tau"]

_FINITE_CHECKS = True


def set_finite_checks(enabled: bool) -> None:
    """Turn the NaN/Inf check on neuron inputs on or off (on by default; it costs one pass over the input)."""
    global _FINITE_CHECKS
    _FINITE_CHECKS = bool(enabled)


def finite_checks_enabled() -> bool:
    """Whether neuron inputs are checked for NaN/Inf."""
    return _FINITE_CHECKS


@contextmanager
def finite_checks(enabled: bool):
    """Turn the NaN/Inf check on or off inside a ``with`` block, restoring the setting after."""
    previous = _FINITE_CHECKS
    set_finite_checks(enabled)
    try:
        yield
    finally:
        set_finite_checks(previous)


def all_finite(x: torch.Tensor) -> bool:
    """True when ``x`` has no NaN/Inf. A finite sum proves it in one cheap reduction; only a non-finite
    sum (a NaN/Inf, or a float overflow of the sum) pays for the element-wise scan."""
    if not x.is_floating_point() or x.numel() == 0:
        return True
    x = x.detach()
    return math.isfinite(float(x.sum(dtype=torch.float64))) or bool(torch.isfinite(x).all())


def check_sequence(x, step_mode: str, who: str) -> None:
    """A neuron input: a floating tensor, ``[B, ...]`` for step_mode 's' or ``[T, B, ...]`` for 'm', finite."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point tensor (float16/bfloat16/float32/float64), got {x.dtype}")
    min_rank = 2 if step_mode == "m" else 1
    if x.dim() < min_rank:
        shape = "[T, B, ...]" if step_mode == "m" else "[B, ...]"
        raise ValueError(f"{who}: step_mode={step_mode!r} takes {shape} (rank >= {min_rank}), "
                         f"got shape {tuple(x.shape)}")
    if _FINITE_CHECKS and not all_finite(x):
        raise ValueError(f"{who}: input contains NaN or Inf (snn.checks.set_finite_checks(False) skips this check)")


def check_positive(value: float, name: str, who: str, allow_zero: bool = False) -> float:
    value = float(value)
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{who}: {name} must be a finite number {bound}, got {value}")
    return value


def check_tau(tau: float, who: str) -> float:
    """LIF time constant: tau >= 1 (so that the decay 1/tau lies in (0, 1])."""
    tau = float(tau)
    if not math.isfinite(tau) or tau < 1:
        raise ValueError(f"{who}: tau must be >= 1 (decay 1/tau in (0, 1]), got {tau}")
    return tau
