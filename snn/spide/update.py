"""The weight update from the two phases' average rates.

With ``δ_l = m_l ⊙ β_l / c`` (backward rates ``β``, forward masks ``m``), a connection ``y = W·u + b`` into
layer ``l`` from the forward rates (or averaged input) ``u`` gets::

    ∂L/∂W = δ_l·uᵀ (summed over the batch),   ∂L/∂b = Σ_batch δ_l,   ∂L/∂u = Wᵀ·δ_l

a local rule: the product of the post-synaptic backward rate and the pre-synaptic forward rate. It is
computed as the vector-Jacobian product of each connection at its input, which is this outer product for
``nn.Linear`` and its equivalent for convolutions and pooling.
"""
from __future__ import annotations

import torch

__all__ = ["parameters_of", "parameter_grads"]


def parameters_of(net) -> list:
    """The connections' parameters of ``net``, each once (the order of the gradients)."""
    seen, out = set(), []
    for _, module, _, _ in net.connections():
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def parameter_grads(net, rates, betas, x_bar, params, need_input: bool = False):
    """``(grads of params, ∂L/∂x̄ or None)`` from forward ``rates``, backward ``betas`` and the averaged input."""
    c = net.neuron.scale
    deltas = [((a > 0) & (a < 1)).to(b.dtype) * b / c for a, b in zip(rates, betas)]
    with torch.enable_grad():
        x = x_bar.detach().requires_grad_(need_input)
        outs, grad_outs = [], []
        for _, module, target, source in net.connections():
            outs.append(module(x if source == "x" else rates[source].detach()))
            grad_outs.append(deltas[target])
        wanted = [p for p in params if p.requires_grad] + ([x] if need_input else [])
        found = torch.autograd.grad(outs, wanted, grad_outs, allow_unused=True) if wanted else ()
    by_id = {id(p): g for p, g in zip(wanted, found)}
    grads = [by_id.get(id(p)) for p in params]
    return grads, (found[-1] if need_input else None)
