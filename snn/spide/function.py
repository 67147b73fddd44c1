"""The autograd wiring: the forward phase without a graph, the backward by SPIDE (spikes) or IDE (numerical).

``SpideFunction.apply(net, x_seq, *params)`` returns the last layer's equilibrium rates; it saves only the
rates of every layer and the averaged input (``[B, ...]`` each), so training memory does not depend on T or
``T_back``. Its backward solves the implicit-differentiation system (``net.options.grad``: ``'spide'`` with
the ternary couples over ``T_back`` steps, ``'ide'`` numerically) and returns the parameters' gradients by
the local update of :mod:`.update`, and the input's (``∂L/∂x[t] = w[t]·∂L/∂x̄``), so an optimizer steps
as after any backward pass.
"""
from __future__ import annotations

import torch

from ..checks import all_finite
from .backward import error_scale, spiking_adjoint
from .equilibrium import check_equilibrium, simulate
from .ide import AdjointSystem, solve_ide
from .neuron import rate_weights
from .update import parameter_grads, parameters_of

__all__ = ["SpideFunction", "equilibrium_rates", "adjoint_rates"]


def _record_forward(net, eq) -> None:
    residual = check_equilibrium(net, eq)
    net.last_stats = dict(T=eq.T, forward_rate=eq.firing_rate, residual=max(residual),
                          grad=net.options.grad)


def adjoint_rates(net, rates, g: torch.Tensor, mode: str | None = None, options=None):
    """``(betas, stats)``: the adjoint rates of every layer for the output error ``g`` at the forward ``rates``,
    by the spiking backward (``mode='spide'``) or the IDE solver (``'ide'``); default ``net.options.grad``
    (``options``: the :class:`SpideOptions` to use, default ``net.options``)."""
    opts = options or net.options
    mode = mode or opts.grad
    system = AdjointSystem(net, rates)
    if mode == "ide":
        betas, iters = solve_ide(system, g, solver=opts.solver, tol=opts.tol, max_iter=opts.max_iter,
                                 on_unconverged=opts.on_unconverged)
        return betas, dict(ide_iterations=iters)
    scale = error_scale(g, opts.grad_scale, net.couple, opts.auto_level)
    betas, counts = spiking_adjoint(system, g * scale, net.couple, opts.T_back)
    neurons = sum(b.numel() for b in betas)
    peak = max(float(b.abs().max()) for b in betas) / net.couple.spike
    # couples that fired at every step can represent no larger |β|: their error is clipped
    saturated = sum(int((b.abs() >= net.couple.spike * (1 - 1e-6)).sum()) for b in betas) / neurons
    stats = dict(T_back=opts.T_back, backward_rate=float(sum(float(c) for c in counts)) / (neurons * opts.T_back),
                 backward_peak=peak, backward_saturated=saturated, grad_scale=scale)
    return [b / scale for b in betas], stats


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is 16-bit (rates under autocast), else as it is."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class SpideFunction(torch.autograd.Function):
    """Forward phase without a graph; backward by SPIDE or IDE (module docstring)."""

    @staticmethod
    def forward(ctx, net, x_seq, *params):
        eq = simulate(net, x_seq)
        _record_forward(net, eq)
        ctx.net, ctx.options, ctx.T, ctx.leak, ctx.x_dtype = net, net.options, eq.T, net.neuron.leak, x_seq.dtype
        ctx.save_for_backward(*(_wide(t) for t in (eq.x_bar, *eq.rates)))  # the backward runs in >= float32
        return eq.rates[-1]

    @staticmethod
    def backward(ctx, grad):
        net = ctx.net
        x_bar, *rates = ctx.saved_tensors
        if not all_finite(grad):
            raise ValueError("SPIDE backward: the gradient of the equilibrium rates contains NaN or Inf (a NaN or "
                             "overflowing loss); refusing to produce NaN weights")
        betas, stats = adjoint_rates(net, rates, _wide(grad), options=ctx.options)
        params = parameters_of(net)
        grads, grad_x_bar = parameter_grads(net, rates, betas, x_bar, params, need_input=ctx.needs_input_grad[1])
        net.last_stats.update(stats)
        grad_x = None
        if grad_x_bar is not None:
            w = rate_weights(ctx.T, ctx.leak, dtype=grad_x_bar.dtype, device=grad_x_bar.device)
            grad_x = (w.reshape(-1, *([1] * grad_x_bar.dim())) * grad_x_bar).to(ctx.x_dtype)
        return (None, grad_x, *grads)


def equilibrium_rates(net, x_seq: torch.Tensor) -> torch.Tensor:
    """The last layer's equilibrium rates of ``net`` for ``x_seq [T, B, ...]``, differentiable as
    ``net.options.grad`` says when autograd needs a gradient."""
    net.check_input(x_seq)
    params = parameters_of(net)
    needed = torch.is_grad_enabled() and (x_seq.requires_grad or any(p.requires_grad for p in params))
    if needed and net.options.grad in ("spide", "ide"):
        return SpideFunction.apply(net, x_seq, *params)
    with torch.set_grad_enabled(needed):
        eq = simulate(net, x_seq)
    _record_forward(net, eq)
    return eq.rates[-1]
