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

The neurons are :class:`snn.neuron.DSRIF` / :class:`snn.neuron.DSRLIF`, their step and this gradient are in
:mod:`snn.neurons.dsr` (re-exported here); this module adds the rates and the readout decay the method uses.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..neuron import DSRIF, DSRLIF, DSRNeuron
from ..neurons.dsr import dsr_mapping, dsr_multistep, representation_weights

__all__ = ["rate", "weighted_rate", "representation_weights", "dsr_mapping", "dsr_multistep", "DSRNeuron",
           "DSRIF", "DSRLIF", "readout_decay"]


def weighted_rate(z_seq: torch.Tensor, lam: float) -> torch.Tensor:
    """λ-weighted firing rate Σ_t w_t·z[t] of ``[T, ...]``; later steps weigh more when λ < 1."""
    w = representation_weights(z_seq.shape[0], lam, z_seq.dtype, z_seq.device)
    return torch.tensordot(w, z_seq, dims=1)


def rate(z_seq: torch.Tensor) -> torch.Tensor:
    """Firing rate (mean over time) of ``[T, ...]``."""
    return z_seq.mean(0)


def readout_decay(model: nn.Module) -> float:
    """λ of the last DSR neuron in ``model`` (1.0 if none): the readout takes this weighted rate."""
    lam = 1.0
    for m in model.modules():
        if isinstance(m, DSRNeuron):
            lam = m.lam
    return lam
