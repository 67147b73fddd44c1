"""Encoders that turn static inputs or signals into spike trains ``[T, B, ...]``.

- direct:  X[t] = x for every t (the first layer turns currents into spikes)
- poisson: S[t] ~ Bernoulli(x), x in [0, 1] the firing probability per step
- latency: one spike per input at t_f = round((1 - x)·(T - 1)) (linear) or
           t_f = round(tau·ln(x / (x - θ))) clipped to T-1 (RC model); x below θ never fires
- delta:   ON spike where x[t] - x[t-1] >= θ, OFF spike where it is <= -θ
"""
from __future__ import annotations


import torch

from .checks import check_range, check_real_tensor

__all__ = ["direct", "poisson", "latency", "delta", "DirectEncoder", "PoissonEncoder", "LatencyEncoder"]


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer number of time steps, got {T!r}")
    return int(T)


def _check_input(x, who: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: x must be a torch.Tensor, got {type(x).__name__}")
    check_real_tensor(x, "x", who)


def _check_latency_args(method: str, tau: float, threshold: float) -> tuple[float, float]:
    """``method`` in {'linear', 'log'}; ``tau > 0`` and ``threshold`` in [0, 1) (both used by 'log')."""
    if method not in ("linear", "log"):
        raise ValueError(f"latency: method must be 'linear' or 'log', got {method!r}")
    tau = check_range(tau, "tau", "latency", low=0.0, low_open=True)
    threshold = check_range(threshold, "threshold", "latency", low=0.0, high=1.0, high_open=True)
    return tau, threshold


def _check_unit_range(x: torch.Tensor, who: str) -> None:
    _check_input(x, who)
    if not x.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point tensor of intensities in [0, 1], got {x.dtype}")
    if x.numel() and (bool(torch.isnan(x).any()) or float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(f"{who}: intensities must lie in [0, 1] (no NaN); got range "
                         f"[{float(x.min()):.4g}, {float(x.max()):.4g}]")


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Repeat ``x`` over T steps: ``[T, *x.shape]`` (a view, no copy)."""
    _check_input(x, "direct")
    return x.unsqueeze(0).expand(_check_T(T), *x.shape)


def poisson(x: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes with probability ``x`` per step: ``[T, *x.shape]``."""
    _check_unit_range(x, "poisson")
    r = torch.rand((_check_T(T), *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (r < x).to(x.dtype)


def latency(x: torch.Tensor, T: int, method: str = "linear", tau: float = 5.0, threshold: float = 0.01,
            ) -> torch.Tensor:
    """Time-to-first-spike code, one spike per input that is above ``threshold``: ``[T, *x.shape]``."""
    tau, threshold = _check_latency_args(method, tau, threshold)
    _check_unit_range(x, "latency")
    T = _check_T(T)
    if method == "linear":
        t_f = torch.round((1.0 - x) * (T - 1))
    else:
        safe = x.clamp_min(threshold + 1e-12)
        t_f = torch.round(tau * torch.log(safe / (safe - threshold))).clamp(max=T - 1)
    fires = x > threshold
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((steps == t_f.long().unsqueeze(0)) & fires.unsqueeze(0)).to(x.dtype)


def delta(x_seq: torch.Tensor, threshold: float = 0.1, off_spikes: bool = True,
          first_from_zero: bool = False) -> torch.Tensor:
    """Delta modulation of a sequence ``[T, ...]``: +1 (ON) where it rose by >= threshold since the previous
    step, -1 (OFF, if ``off_spikes``) where it fell by >= threshold. The first step compares with 0 when
    ``first_from_zero``, else it is silent."""
    _check_input(x_seq, "delta")
    if x_seq.dim() < 1 or not x_seq.is_floating_point():
        raise ValueError(f"delta: expected a floating sequence [T, ...], got {x_seq.dtype} {tuple(x_seq.shape)}")
    threshold = check_range(threshold, "threshold", "delta", low=0.0, low_open=True)
    prev = torch.cat([torch.zeros_like(x_seq[:1]) if first_from_zero else x_seq[:1], x_seq[:-1]])
    d = x_seq - prev
    out = (d >= threshold).to(x_seq.dtype)
    if off_spikes:
        out = out - (d <= -threshold).to(x_seq.dtype)
    return out


class DirectEncoder(torch.nn.Module):
    """Module form of :func:`direct`."""

    def __init__(self, T: int):
        super().__init__()
        self.T = _check_T(T)

    def forward(self, x):
        return direct(x, self.T)


class PoissonEncoder(torch.nn.Module):
    """Module form of :func:`poisson`."""

    def __init__(self, T: int):
        super().__init__()
        self.T = _check_T(T)

    def forward(self, x):
        return poisson(x, self.T)


class LatencyEncoder(torch.nn.Module):
    """Module form of :func:`latency`."""

    def __init__(self, T: int, method: str = "linear", tau: float = 5.0, threshold: float = 0.01):
        super().__init__()
        self.T, self.method = _check_T(T), method
        self.tau, self.threshold = _check_latency_args(method, tau, threshold)

    def forward(self, x):
        return latency(x, self.T, self.method, self.tau, self.threshold)
