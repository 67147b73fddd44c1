"""Input validation shared by the modules: clear errors that say what was wrong and what is accepted."""
from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import torch

__all__ = ["set_finite_checks", "finite_checks_enabled", "finite_checks", "all_finite", "check_sequence",
           "check_positive", "check_tau", "check_finite", "check_range", "check_real_tensor", "check_int", "check_bool"]

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
    """True when ``x`` has no NaN/Inf. A finite sum proves it in one cheap reduction, summed in ``x``'s own
    dtype (a float64 sum of a float32 tensor would first copy it to float64: 2x its size in new memory); only a
    non-finite sum (a NaN/Inf, or an overflow of the sum, e.g. past 65504 in float16) pays for the element-wise
    scan."""
    if not x.is_floating_point() or x.numel() == 0:
        return True
    x = x.detach()
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


_NOT_FINITE = "{}: input contains NaN or Inf (snn.checks.set_finite_checks(False) skips this check)"


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
    if not _FINITE_CHECKS:
        return
    if torch.compiler.is_compiling():  # a check inside the graph (no Python branch on the data)
        torch._assert_async(torch.isfinite(x).all(), _NOT_FINITE.format(who))
    elif not all_finite(x):
        raise ValueError(_NOT_FINITE.format(who))


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


def check_finite(value, name: str, who: str) -> float:
    """A finite real number (not NaN/Inf, not complex), returned as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_real_scalar(value):
        raise TypeError(f"{who}: {name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be finite, got {value}")
    return value


def check_range(value, name: str, who: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite number in the interval given by ``low``/``high`` (closed unless ``*_open``), returned as float."""
    value = check_finite(value, name, who)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "-inf" if low is None else f"{low}"
        right = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{who}: {name} must lie in {interval}, got {value}")
    return value


def check_real_tensor(x, name: str, who: str) -> None:
    """A real-valued tensor: complex tensors are refused rather than silently cast to their real part."""
    if isinstance(x, torch.Tensor) and x.is_complex():
        raise TypeError(f"{who}: {name} must be real-valued, got a complex tensor ({x.dtype})")


def _is_real_scalar(value) -> bool:
    """numpy/torch real scalars (0-d) count as numbers; complex ones do not."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, np.generic) and np.isrealobj(value) and np.issubdtype(np.asarray(value).dtype, np.number)


def check_bool(value, name: str, who: str) -> bool:
    """A flag: ``True``/``False`` (numpy and 0-d torch booleans too), never a string or a number that
    Python would read as truthy."""
    if isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{who}: {name} must be True or False, got {type(value).__name__} {value!r}")


def check_int(value, name: str, who: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (Python or numpy, not bool, not a float) in ``[low, high]``, returned as ``int``."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{who}: {name} must lie in [{lo}, {hi}], got {value}")
    return value


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"
