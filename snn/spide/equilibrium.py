"""The forward phase: a feedback network's spikes over T steps and their average rates (no autograd graph
unless BPTT asks for one), the numerical fixed point of the rate equation, and the equilibrium check.

Check: the average rates ``a`` of T steps satisfy the rate equation ``a = σ(I(a)/c)`` (:mod:`.network`) up to
the spike approximation bound ``e(T)`` (:meth:`ForwardNeuron.error_bound`) when every membrane stays within
``[u_rest, V_th)``, i.e. when the network has reached its equilibrium (the feedback is taken as it arrived,
one step late: the last layer's rate without its last step). A mean absolute residual above
``e(T) + residual_tol`` in any layer means it has not (a neuron that fired, then was silenced; drifting
rates; too few steps): an :class:`EquilibriumWarning` or, with ``on_unconverged='error'``, an
:class:`EquilibriumError`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.nn.utils import parametrize

from ..checks import finite_checks
from ..functional import reset
from .neuron import accumulate, rate_total, rate_weights

__all__ = ["Equilibrium", "EquilibriumWarning", "EquilibriumError", "simulate", "weighted_mean", "residuals",
           "check_equilibrium", "rate_equilibrium", "report"]


class EquilibriumWarning(UserWarning):
    """A feedback network's rates did not settle to an equilibrium (or an IDE solve did not converge)."""


class EquilibriumError(RuntimeError):
    """A feedback network's rates did not settle, or the implicit-differentiation system did not converge."""


def report(message: str, on_unconverged: str) -> None:
    """Raise, warn or ignore ``message`` as ``on_unconverged`` says."""
    if on_unconverged == "error":
        raise EquilibriumError(message)
    if on_unconverged == "warn":
        warnings.warn(message, EquilibriumWarning, stacklevel=3)


@dataclass
class Equilibrium:
    """The forward phase's result: ``rates`` per layer (``[B, ...]``), the averaged input ``x_bar``, the number
    of steps ``T``, the spike counts per layer and the rate the feedback delivered (``fed_back``: the last
    layer's, without its last step)."""

    rates: list
    x_bar: torch.Tensor
    T: int
    spikes: list
    fed_back: torch.Tensor

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step over all layers (the forward phase's firing sparsity)."""
        neurons = sum(a[0].numel() for a in self.rates) * self.rates[0].shape[0]
        return float(sum(float(s) for s in self.spikes)) / (neurons * self.T)


def weighted_mean(x_seq: torch.Tensor, leak: float) -> torch.Tensor:
    """``Σ_t w[t]·x[t]`` with the rate weights ``w`` (:func:`rate_weights`); the first frame for a direct
    (time-repeated, stride-0) input."""
    if x_seq.shape[0] == 1 or x_seq.stride(0) == 0:
        return x_seq[0]
    w = rate_weights(x_seq.shape[0], leak, dtype=x_seq.dtype, device=x_seq.device)
    return torch.tensordot(w, x_seq, dims=1)


def _check_shapes(net, drive, fed_back) -> None:
    fb = net.feedback(fed_back)
    if fb.shape != drive.shape:
        raise ValueError(f"FeedbackSNN: feedback maps the last layer {tuple(fed_back.shape)} to "
                         f"{tuple(fb.shape)}, but input_map gives layer 0 the shape {tuple(drive.shape)}; the "
                         f"feedback must produce layer 0's shape")


def simulate(net, x_seq: torch.Tensor) -> Equilibrium:
    """Run ``net`` (a :class:`~snn.spide.FeedbackSNN`) over ``x_seq [T, B, ...]`` from rest; differentiable
    (BPTT) when autograd is on, graph-free under ``torch.no_grad``. The input and parameters are checked by
    the caller (:meth:`FeedbackSNN.check_input`), so the per-step NaN scan of the neurons is skipped, and
    parametrized weights (the feedback's norm cap) are computed once."""
    T, leak, n = x_seq.shape[0], net.neuron.leak, net.num_layers
    reset(net.cells)
    constant = T == 1 or x_seq.stride(0) == 0
    acc, counts, drive, last = [None] * n, [0.0] * n, None, None
    with parametrize.cached(), finite_checks(False):
        for t in range(T):
            if drive is None or not constant:
                drive = net.input_map(x_seq[t])
                if t == 0 and not torch.isfinite(drive).all():
                    raise ValueError("FeedbackSNN: input_map gives NaN or Inf currents (overflow of the input or "
                                     "the weights); the equilibrium rates would be meaningless")
            if t == 1:
                _check_shapes(net, drive, last)
            shift = net.neuron.shift(t)
            s = None
            for layer in range(n):
                s = net.cells[layer](net.current(layer, s, drive, last) + shift)
                acc[layer] = accumulate(acc[layer], s, leak)
                if leak != 1.0:  # IF: the spike count is the sum itself
                    counts[layer] = counts[layer] + s.detach().sum()
            last = s
    reset(net.cells)
    if leak == 1.0:
        counts = [a.detach().sum() for a in acc]
    total = rate_total(T, leak)
    rates = [a / total for a in acc]
    with torch.no_grad():
        fed_back = (rates[-1] - last / total) / leak
    return Equilibrium(rates, weighted_mean(x_seq, leak), T, counts, fed_back)


def residuals(net, rates, x_bar, fed_back=None) -> list[float]:
    """Mean |a - σ(I(a)/c)| per layer (the rate equation's residual at ``rates``; ``fed_back``: the rate fed
    back to layer 0, default the last layer's)."""
    with torch.no_grad():
        new = net.rate_map(rates, net.input_map(x_bar), fed_back)
        return [float((a - b).abs().mean()) for a, b in zip(rates, new)]


def check_equilibrium(net, eq: Equilibrium) -> list[float]:
    """The residuals of ``eq``; reported (options.on_unconverged) when one exceeds the bound (module docstring)."""
    res = residuals(net, eq.rates, eq.x_bar, eq.fed_back)
    limit = net.neuron.error_bound(eq.T) + net.options.residual_tol
    worst = max(range(len(res)), key=res.__getitem__)
    if res[worst] > limit:
        report(f"FeedbackSNN: the rates did not settle to an equilibrium in T={eq.T} steps: layer {worst}'s mean "
               f"residual of the rate equation is {res[worst]:.3g} (allowed {limit:.3g}: spike error bound + "
               f"residual_tol); the gradient assumes an equilibrium, so raise T, weaken the feedback (its weight "
               f"norm) or lower the learning rate", net.options.on_unconverged)
    return res


def rate_equilibrium(net, x_bar: torch.Tensor, *, tol: float = 1e-10, max_iter: int = 10000):
    """The fixed point of the rate equation for the averaged input ``x_bar`` (``[B, ...]``) by fixed-point
    iteration from zero rates: ``(rates, iterations)``; an :class:`EquilibriumError` when it does not converge."""
    with torch.no_grad():
        drive = net.input_map(x_bar)
        rates = _zero_rates(net, drive)
        for it in range(1, max_iter + 1):
            new = net.rate_map(rates, drive)
            change = max(float((a - b).abs().max()) for a, b in zip(new, rates))
            rates = new
            if change <= tol:
                return rates, it
    raise EquilibriumError(f"rate_equilibrium: the rate equation's fixed-point iteration did not converge in "
                           f"{max_iter} iterations (last change {change:.3g} > tol {tol:g}); the feedback is too "
                           f"strong for a unique stable equilibrium")


def _zero_rates(net, drive):
    """Zero rates of every layer (shapes found by one pass of the connections)."""
    shapes, a = [], (drive / net.neuron.scale).clamp(0.0, 1.0)
    shapes.append(a)
    for layer in range(1, net.num_layers):
        a = (net.current(layer, a) / net.neuron.scale).clamp(0.0, 1.0)
        shapes.append(a)
    return [torch.zeros_like(a) for a in shapes]
