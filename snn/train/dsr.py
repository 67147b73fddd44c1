r"""DSR: differentiation on spike representation (Meng et al., 2022).

Forward: the neurons simulate T steps with subtraction reset, firing at a fraction ``alpha`` of the
threshold and emitting spikes of size ``V_th``::

    U[t] = λ·U[t-1] + X[t]              (IF: λ = 1; LIF: λ = 1 - 1/tau, i.e. snn.neuron.LIF with
    S[t] = Θ(U[t] - alpha·V_th)          decay_input=False and soft reset)
    U[t] = U[t] - V_th·S[t];  out[t] = V_th·S[t]

Representation: the (λ-weighted) firing rate of a sequence ``z``::

    r(z) = Σ_t w_t·z[t],   w_t = λ^(T-1-t) / Σ_k λ^(T-1-k)     (λ = 1: the plain rate, mean over t)

Summing the membrane equation gives r(out) = r(X) - U[T-1]/Σ_k λ^k, and since 0 <= out[t] <= V_th,
r(out) ≈ clamp(r(X), 0, V_th): a sub-differentiable mapping. The backward pass differentiates that
mapping instead of the spikes, reading every out[t] as the representation r(out)::

    g      = Σ_t ∂L/∂out[t]                         (∂L/∂r_out)
    ∂L/∂X[t] = w_t · g · 1[0 < r(X) < V_th]
    ∂L/∂V_th = Σ g · 1[r(X) >= V_th]                 (trainable threshold, one per layer)

The threshold is clamped from below at ``v_threshold_min`` (zero gradient there).
``alpha = 0.5`` makes the spike count round ``Σ X / V_th`` instead of flooring it, which shrinks the
error between r(out) and the clamp.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..base import MemoryModule

__all__ = ["rate", "weighted_rate", "representation_weights", "dsr_mapping", "dsr_multistep", "DSRNeuron",
           "DSRIF", "DSRLIF", "readout_decay"]


def representation_weights(T: int, lam: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """w_t = λ^(T-1-t) / Σ_k λ^k for t = 0..T-1 (uniform 1/T when λ = 1)."""
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"the representation decay λ must lie in (0, 1], got {lam}")
    w = torch.tensor([lam ** (T - 1 - t) for t in range(T)], dtype=torch.float64)
    return (w / w.sum()).to(dtype=dtype, device=device)


def weighted_rate(z_seq: torch.Tensor, lam: float) -> torch.Tensor:
    """λ-weighted firing rate Σ_t w_t·z[t] of ``[T, ...]``; later steps weigh more when λ < 1."""
    w = representation_weights(z_seq.shape[0], lam, z_seq.dtype, z_seq.device)
    return torch.tensordot(w, z_seq, dims=1)


def rate(z_seq: torch.Tensor) -> torch.Tensor:
    """Firing rate (mean over time) of ``[T, ...]``."""
    return z_seq.mean(0)


def dsr_mapping(r_in: torch.Tensor, v_threshold: torch.Tensor | float) -> torch.Tensor:
    """The representation mapping r_out = clamp(r_in, 0, V_th) whose gradient DSR uses."""
    v_threshold = torch.as_tensor(v_threshold, dtype=r_in.dtype, device=r_in.device)
    return torch.minimum(r_in.clamp_min(0), v_threshold)


def _simulate(x_seq, v_th: float, lam: float, alpha: float):
    u = torch.zeros_like(x_seq[0])
    out = torch.empty_like(x_seq)
    for t in range(x_seq.shape[0]):
        u = u * lam + x_seq[t] if lam != 1.0 else u + x_seq[t]
        s = (u >= alpha * v_th).to(x_seq.dtype)
        u = u - v_th * s
        out[t] = v_th * s
    return out


class _DSRFunction(torch.autograd.Function):
    """Spikes forward, gradient of :func:`dsr_mapping` on λ-weighted rates backward."""

    @staticmethod
    def forward(ctx, x_seq, v_th, lam, alpha):
        with torch.no_grad():
            out = _simulate(x_seq, float(v_th), lam, alpha)
            w = representation_weights(x_seq.shape[0], lam, x_seq.dtype, x_seq.device)
            r_in = torch.tensordot(w, x_seq, dims=1)
        ctx.save_for_backward(r_in, v_th, w)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        r_in, v_th, w = ctx.saved_tensors
        g = grad_out.sum(0)
        inside = ((r_in > 0) & (r_in < v_th)).to(g.dtype)
        grad_x = w.view(-1, *([1] * g.dim())) * (g * inside).unsqueeze(0)
        grad_v = (g * (r_in >= v_th).to(g.dtype)).sum().reshape(v_th.shape)
        return grad_x, grad_v, None, None


def dsr_multistep(x_seq: torch.Tensor, v_threshold: torch.Tensor, lam: float = 1.0, alpha: float = 0.5):
    """Run a DSR neuron over ``[T, ...]``: spikes of size V_th forward, mapping gradient backward."""
    if x_seq.dim() < 2:
        raise ValueError(f"DSR neurons take a sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
    v_threshold = torch.as_tensor(v_threshold, dtype=x_seq.dtype, device=x_seq.device)
    return _DSRFunction.apply(x_seq, v_threshold, float(lam), float(alpha))


class DSRNeuron(MemoryModule):
    """Base of the DSR neurons: multi-step only (``[T, B, ...]``), no state kept between calls.

    ``v_threshold`` is a trainable scalar per layer, clamped below at ``v_threshold_min``.
    """

    lam: float = 1.0

    def __init__(self, v_threshold: float = 1.0, alpha: float = 0.5, v_threshold_min: float = 0.05,
                 trainable_threshold: bool = True):
        super().__init__("m")
        if not (math.isfinite(v_threshold) and v_threshold > 0):
            raise ValueError(f"{type(self).__name__}: v_threshold must be > 0, got {v_threshold}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"{type(self).__name__}: alpha must lie in (0, 1], got {alpha}")
        self.v_threshold = nn.Parameter(torch.tensor(float(v_threshold)), requires_grad=trainable_threshold)
        self.alpha = float(alpha)
        self.v_threshold_min = float(v_threshold_min)

    @MemoryModule.step_mode.setter
    def step_mode(self, mode):
        if mode != "m":
            raise ValueError(f"{type(self).__name__} works on whole sequences: step_mode must be 'm', got {mode!r}")
        self._step_mode = mode

    def reset(self) -> None:
        """Nothing to forget: every call starts from U = 0."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        v_th = self.v_threshold.clamp_min(self.v_threshold_min)
        return dsr_multistep(x_seq, v_th, self.lam, self.alpha)

    def extra_repr(self) -> str:
        return f"v_threshold={float(self.v_threshold):.4g}, alpha={self.alpha}, lam={self.lam:.4g}"


class DSRIF(DSRNeuron):
    """DSR integrate-and-fire: U[t] = U[t-1] + X[t]; representation = firing rate."""


class DSRLIF(DSRNeuron):
    """DSR leaky integrate-and-fire: U[t] = λ·U[t-1] + X[t], λ = 1 - 1/tau; representation = λ-weighted rate."""

    def __init__(self, tau: float = 2.0, **kw):
        if not (math.isfinite(tau) and tau > 1):
            raise ValueError(f"DSRLIF: tau must be > 1 (λ = 1 - 1/tau in (0, 1)), got {tau}")
        super().__init__(**kw)
        self.tau = float(tau)
        self.lam = 1.0 - 1.0 / self.tau


def readout_decay(model: nn.Module) -> float:
    """λ of the last DSR neuron in ``model`` (1.0 if none): the readout takes this weighted rate."""
    lam = 1.0
    for m in model.modules():
        if isinstance(m, DSRNeuron):
            lam = m.lam
    return lam
