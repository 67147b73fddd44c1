"""SPIDE's two neurons: the forward neuron with the modified reset, and the ternary neuron couple of the
backward phase.

Forward neuron (leak ``λ = 1``: IF; ``0 < λ < 1``: LIF), threshold ``V_th``, reset potential ``u_rest``
(default ``-V_th``), ``c = V_th - u_rest``::

    H[t] = u[t] + I[t];   s[t] = Θ(H[t] - V_th);   u[t+1] = λ·(H[t] - c·s[t]);   u[0] = 0
    a = Σ_t λ^(T-1-t)·s[t] / Σ_t λ^t                      (the (weighted) average firing rate)

Summing the membrane equation gives ``a = Ī/c - u[T]/(λ·c·Σ_t λ^t)`` with ``Ī`` the equally weighted average
input, so ``a ≈ σ(Ī/c)``, ``σ = clamp(·, 0, 1)``. Subtracting ``c = 2·V_th`` (instead of ``V_th``, the plain
soft reset) keeps a firing neuron's membrane in ``[-V_th, V_th)``: the spike count rounds instead of
truncating, halving the error to ``V_th/(λ·c·Σ_t λ^t)`` (``1/(2T)`` for IF).

It runs as snn's own IF/LIF module (:mod:`snn.neurons.lif`: soft reset, ``decay_input=False``) in the
shifted coordinates ``V = u - u_rest``: threshold ``c``, ``V[0] = 0``, input ``I[0] - u_rest`` at the first
step and ``I[t] - (1-λ)·u_rest`` after it (so the kernels of :mod:`snn.ops`, and their surrogate gradients for
BPTT, run the step).

Ternary neuron couple (backward phase): one membrane ``v`` and two spike outputs, threshold ``V_b``, reset
``u_b`` (default ``-V_b``), spike size ``c_b = V_b - u_b``::

    h = v + I;   z = c_b·(Θ(h - V_b) - Θ(-h - V_b));   v ← λ_b·(h - z)        z in {-c_b, 0, +c_b}

Its average output ``β = Σ_t λ_b^(T-1-t) z[t] / Σ_t λ_b^t`` approximates ``clamp(Ī, -c_b, c_b)`` the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import neuron as snn_neuron
from ..checks import check_range

__all__ = ["ForwardNeuron", "TernaryCouple", "rate_weights", "rate_total", "accumulate"]


def rate_weights(T: int, leak: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """``w[t] = λ^(T-1-t) / Σ_k λ^k`` (``[T]``, sums to 1): the weights of the average firing rate."""
    w = torch.full((T,), float(leak), dtype=torch.float64).pow(torch.arange(T - 1, -1, -1, dtype=torch.float64))
    return (w / w.sum()).to(dtype=dtype, device=device)


def rate_total(T: int, leak: float) -> float:
    """``Σ_{k<T} λ^k``: what the leaky spike sum of an always-firing neuron reaches after T steps."""
    return float(T) if leak == 1.0 else (1.0 - leak ** T) / (1.0 - leak)


def accumulate(acc, s, leak: float):
    """The leaky spike sum one step on: ``λ·acc + s`` (``s`` itself at the first step, ``acc`` None)."""
    if acc is None:
        return s
    return acc + s if leak == 1.0 else acc * leak + s


@dataclass(frozen=True)
class _Membrane:
    """Threshold, reset potential (default ``-V_th``) and leak of a layer of neurons, checked on construction;
    error messages name them with ``_suffix`` (``v_threshold_back`` for the couples)."""

    v_threshold: float = 1.0
    u_rest: float | None = None
    leak: float = 1.0
    _who = "SPIDE neuron"
    _suffix = ""

    def __post_init__(self):
        who, sfx = self._who, self._suffix
        vth = check_range(self.v_threshold, "v_threshold" + sfx, who, 0.0, low_open=True)
        u_rest = -vth if self.u_rest is None else check_range(self.u_rest, "u_rest" + sfx, who, None, vth,
                                                              high_open=True)
        object.__setattr__(self, "v_threshold", vth)
        object.__setattr__(self, "u_rest", u_rest)
        object.__setattr__(self, "leak", check_range(self.leak, "leak" + sfx, who, 0.0, 1.0, low_open=True))


@dataclass(frozen=True)
class ForwardNeuron(_Membrane):
    """Parameters of the forward neuron (module docstring)."""

    _who = "SPIDE forward neuron"

    @property
    def scale(self) -> float:
        """``c = V_th - u_rest``: the input that makes one spike per step (rate 1)."""
        return self.v_threshold - self.u_rest

    def shift(self, t: int) -> float:
        """The constant added to step ``t``'s input in the shifted coordinates (module docstring)."""
        return -self.u_rest if t == 0 else -(1.0 - self.leak) * self.u_rest

    def error_bound(self, T: int) -> float:
        """Bound of ``|a - Ī/c|`` for a neuron whose membrane stays in ``[u_rest, V_th)``."""
        return max(self.v_threshold, -self.u_rest) / (self.leak * self.scale * rate_total(T, self.leak))

    def cell(self, *, surrogate="atan", detach_reset: bool = False, backend: str = "auto"):
        """A new snn IF (``λ = 1``) or LIF module, single-step, running this neuron in shifted coordinates."""
        kw = dict(v_threshold=self.scale, v_reset=None, surrogate=surrogate, detach_reset=detach_reset,
                  step_mode="s", backend=backend)
        if self.leak == 1.0:
            return snn_neuron.IF(**kw)
        return snn_neuron.LIF(tau=1.0 / (1.0 - self.leak), decay_input=False, **kw)


@dataclass(frozen=True)
class TernaryCouple(_Membrane):
    """Parameters of the backward phase's ternary neuron couples (module docstring)."""

    v_threshold: float = 0.5
    _who = "SPIDE ternary neuron couple"
    _suffix = "_back"

    @property
    def spike(self) -> float:
        """``c_b = V_b - u_b``: the size of one ternary spike (the largest |β| it can represent)."""
        return self.v_threshold - self.u_rest

    def step(self, v: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a layer of couples: ``(z, v)``, ``z`` in ``{-c_b, 0, c_b}``."""
        h = v + current
        z = ((h >= self.v_threshold).to(h.dtype) - (h <= -self.v_threshold).to(h.dtype)) * self.spike
        v = h - z
        return z, (v * self.leak if self.leak != 1.0 else v)
