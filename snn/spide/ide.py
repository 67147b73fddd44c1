"""Implicit differentiation on the equilibrium state (IDE): the linear system of the backward pass and its
numerical solution (the reference that the spiking backward of :mod:`snn.spide.backward` approximates).

At the equilibrium ``a`` (:mod:`.network`), with ``m_l = 1[0 < a_l < 1]`` (σ's derivative), ``c`` the
forward neuron's scale and ``g = ∂L/∂a_{N-1}``, the adjoint rates ``β_l = dL/da_l`` solve::

    β_{N-1} = g + W_fbᵀ·(m_0 ⊙ β_0) / c,        β_{l-1} = W_{l-1}ᵀ·(m_l ⊙ β_l) / c     (l = N-1 .. 1)

i.e. ``β = g + Jᵀβ`` with ``J`` the Jacobian of the rate equation. Going once around the loop maps
``z = β_{N-1}`` to ``g + K·z`` (:meth:`AdjointSystem.sweep`); the solvers find ``z = g + K·z``:
``'fixed_point'`` iterates it (converges when the spectral radius of ``K`` is below 1), ``'broyden'`` runs
``scipy.optimize.root(method='broyden1')`` on ``g + K·z - z`` (float64, on the CPU).
"""
from __future__ import annotations

import math

import torch

from .equilibrium import EquilibriumError, report
from .structure import transpose_of

__all__ = ["AdjointSystem", "solve_ide"]


class AdjointSystem:
    """The backward system of ``net`` at the equilibrium ``rates`` (module docstring)."""

    def __init__(self, net, rates):
        self.n, self.c = net.num_layers, net.neuron.scale
        self.masks = [((a > 0) & (a < 1)).to(a.dtype) for a in rates]
        # back[l]: δ at layer l -> the current it sends back (to layer l-1, or to layer N-1 from layer 0)
        self.back_maps = [transpose_of(net.feedback, rates[-1])]
        self.back_maps += [transpose_of(net.maps[l - 1], rates[l - 1]) for l in range(1, self.n)]

    def back(self, layer: int, beta: torch.Tensor) -> torch.Tensor:
        """``Wᵀ·(m ⊙ β) / c`` sent back from ``layer``'s adjoint ``beta``."""
        return self.back_maps[layer](self.masks[layer] * beta) / self.c

    def sweep(self, z: torch.Tensor, g: torch.Tensor):
        """``(betas, g + K·z)``: the adjoints of every layer given ``β_{N-1} = z``, and the new ``β_{N-1}``."""
        betas = [None] * self.n
        betas[-1] = z
        for layer in range(self.n - 1, 0, -1):
            betas[layer - 1] = self.back(layer, betas[layer])
        return betas, g + self.back(0, betas[0])


GROWTH_WINDOW = 50  # the fixed-point iteration diverges when its step grew over this many iterations


def _fixed_point(system, g, tol, max_iter):
    z, steps = g, []
    for it in range(1, max_iter + 1):
        betas, new = system.sweep(z, g)
        step = float((new - z).abs().max())
        steps.append(step)
        if not math.isfinite(step) or (it > 2 * GROWTH_WINDOW and step > steps[-GROWTH_WINDOW - 1] > 0):
            return betas, new, it, math.inf
        change = step / max(float(new.abs().max()), 1e-300)
        z = new
        if change <= tol:
            break
    betas, _ = system.sweep(z, g)
    return betas, z, it, change


def _broyden(system, g, tol, max_iter):
    from scipy.optimize import root

    shape, dtype, device = g.shape, g.dtype, g.device
    g64 = g.detach().to("cpu", torch.float64)

    def residual(v):
        z = torch.from_numpy(v).reshape(shape).to(device=device, dtype=dtype)
        _, new = system.sweep(z, g)
        return (new.to("cpu", torch.float64) - z.to("cpu", torch.float64)).reshape(-1).numpy()

    scale = max(float(g64.abs().max()), 1e-300)
    sol = root(residual, g64.reshape(-1).numpy(), method="broyden1",
               options=dict(maxiter=max_iter, fatol=tol * scale, line_search=None))
    z = torch.from_numpy(sol.x).reshape(shape).to(device=device, dtype=dtype)
    betas, new = system.sweep(z, g)
    change = float((new - z).abs().max()) / max(float(new.abs().max()), 1e-300)
    return betas, z, int(sol.nit), change


def solve_ide(system: AdjointSystem, g: torch.Tensor, *, solver: str = "fixed_point", tol: float = 1e-6,
              max_iter: int = 1000, on_unconverged: str = "warn"):
    """``(betas, iterations)``: the adjoint rates of every layer for the output error ``g``.

    Diverging iterates (non-finite, or a fixed-point step that grew over ``GROWTH_WINDOW`` iterations: the
    spectral radius of ``K`` is >= 1) are an :class:`EquilibriumError`; a solve that
    stops at ``max_iter`` above ``tol`` is reported as ``on_unconverged`` says."""
    with torch.no_grad():
        run = _fixed_point if solver == "fixed_point" else _broyden
        betas, _, iters, change = run(system, g, tol, max_iter)
    if not math.isfinite(change) or not all(torch.isfinite(b).all() for b in betas):
        raise EquilibriumError(f"IDE: the implicit-differentiation system diverged ({solver}, {iters} iterations): "
                               f"the equilibrium Jacobian has spectral radius >= 1, so the equilibrium is unstable; "
                               f"weaken the feedback (its weight norm) or lower the learning rate")
    if change > tol:
        report(f"IDE: the {solver} solve stopped after {iters} iterations with relative change {change:.3g} > tol "
               f"{tol:g} (the equilibrium Jacobian's spectral radius is close to 1); raise max_iter or weaken the "
               f"feedback", on_unconverged)
    return betas, iters
