"""How close SPIDE's spike-based gradient is to the IDE gradient it approximates, as ``T_back`` grows.

At one forward equilibrium of a :class:`~snn.spide.models.SpideClassifier` on a batch, the cross-entropy
error ``g`` of the readout drives both backward solutions; for each ``T_back`` the weight gradients of the
feedback network are compared with IDE's: cosine similarity and relative error ``‖∇_SPIDE - ∇_IDE‖/‖∇_IDE‖``.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from .. import viz
from .equilibrium import simulate
from .function import adjoint_rates
from .update import parameter_grads, parameters_of

__all__ = ["gradient_error", "plot_gradient_error"]


def _flat_grads(net, eq, betas, params) -> torch.Tensor:
    grads, _ = parameter_grads(net, eq.rates, betas, eq.x_bar, params)
    return torch.cat([g.reshape(-1) for g in grads if g is not None])


def gradient_error(model, x_seq: torch.Tensor, y: torch.Tensor, T_backs=(10, 20, 50, 100, 250, 500)) -> dict:
    """``{'T_back', 'cosine', 'relative_error', 'backward_rate'}`` (lists over ``T_backs``) of the SPIDE weight
    gradient against IDE's for ``model`` (a SpideClassifier) on the batch ``x_seq [T, B, ...]``, ``y``."""
    net = model.body
    with torch.no_grad():
        eq = simulate(net, x_seq)
    out = eq.rates[-1].detach().requires_grad_(True)
    g, = torch.autograd.grad(F.cross_entropy(model.readout(out.flatten(1)), y), out)
    params = parameters_of(net)
    betas, _ = adjoint_rates(net, eq.rates, g, "ide")
    reference = _flat_grads(net, eq, betas, params)
    result = {"T_back": [], "cosine": [], "relative_error": [], "backward_rate": []}
    for T_back in T_backs:
        betas, stats = adjoint_rates(net, eq.rates, g, "spide", replace(net.options, T_back=int(T_back)))
        grads = _flat_grads(net, eq, betas, params)
        result["T_back"].append(int(T_back))
        result["cosine"].append(float(F.cosine_similarity(grads, reference, dim=0)))
        result["relative_error"].append(float((grads - reference).norm() / reference.norm()))
        result["backward_rate"].append(stats["backward_rate"])
    return result


def plot_gradient_error(results: dict, path, title: str = "SPIDE gradient vs IDE"):
    """Relative error (log-log) and cosine similarity against ``T_back``; ``results``: ``{label: gradient_error
    result}``. Written atomically as PNG; returns the path."""
    plt, (fig, (ax_err, ax_cos)) = viz._figure(ncols=2, figsize=(9, 3.6))
    for label, r in results.items():
        ax_err.loglog(r["T_back"], r["relative_error"], "o-", label=label)
        ax_cos.semilogx(r["T_back"], r["cosine"], "o-", label=label)
    ax_err.set_xlabel("T_back (backward time steps)")
    ax_err.set_ylabel("‖∇SPIDE − ∇IDE‖ / ‖∇IDE‖")
    ax_cos.set_xlabel("T_back (backward time steps)")
    ax_cos.set_ylabel("cosine similarity to IDE")
    ax_cos.axhline(0.99, color="grey", lw=0.8, ls="--")
    for ax in (ax_err, ax_cos):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return viz._save(plt, fig, path)
