"""SPIDE's backward phase: ternary neuron couples solve the implicit-differentiation system with spikes.

One couple per forward neuron (:class:`~snn.spide.neuron.TernaryCouple`), wired through the transposed
connections with the forward phase's masks ``m_l`` (:class:`~snn.spide.ide.AdjointSystem`). One step::

    last layer:  J_{N-1}[t] = g + W_fbᵀ·(m_0 ⊙ z_0[t-1]) / c             (only g at t = 0)
    layer l-1:   J_{l-1}[t] = W_{l-1}ᵀ·(m_l ⊙ z_l[t]) / c
    z_l[t], v_l = couple step of J_l[t]                                   (z in {-c_b, 0, c_b})

The average outputs ``β_l = Σ_t w[t]·z_l[t]`` (rate weights of the couples' leak) approach the solution of
``β = g + Jᵀβ`` as ``T_back`` grows, within ``±c_b``; the error ``g`` is scaled into that range before
(``grad_scale``) and the result scaled back after.
"""
from __future__ import annotations

import torch

from .ide import AdjointSystem
from .neuron import TernaryCouple, accumulate, rate_total

__all__ = ["spiking_adjoint", "error_scale"]


def error_scale(g: torch.Tensor, grad_scale, couple: TernaryCouple, auto_level: float) -> float:
    """The factor applied to ``g`` before the spiking phase: ``grad_scale``, or with ``'auto'`` the one that
    makes ``max|g|`` equal to ``auto_level`` spike sizes per step (1 for an all-zero ``g``)."""
    if grad_scale != "auto":
        return float(grad_scale)
    peak = float(g.abs().max())
    return auto_level * couple.spike / peak if peak > 0 else 1.0


def spiking_adjoint(system: AdjointSystem, g: torch.Tensor, couple: TernaryCouple, T_back: int):
    """``(betas, spike_counts)``: the couples' average outputs per layer after ``T_back`` steps driven by ``g``
    (already scaled), and their spike counts (positive and negative spikes)."""
    n, leak = system.n, couple.leak
    with torch.no_grad():
        v = [None] * n
        acc, counts, z = [None] * n, [0.0] * n, [None] * n
        for t in range(T_back):
            for layer in range(n - 1, -1, -1):
                if layer == n - 1:
                    current = g if t == 0 else g + system.back(0, z[0])
                else:
                    current = system.back(layer + 1, z[layer + 1])
                if v[layer] is None:
                    v[layer] = torch.zeros_like(current)
                z[layer], v[layer] = couple.step(v[layer], current)
                acc[layer] = accumulate(acc[layer], z[layer], leak)
                counts[layer] = counts[layer] + z[layer].abs().sum() / couple.spike
        total = rate_total(T_back, leak)
        return [a / total for a in acc], counts
