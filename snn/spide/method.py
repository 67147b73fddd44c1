"""SPIDE and IDE as training methods of :mod:`snn.train` (``fit(model, ..., method='spide')``,
``snn train --method spide --model spide-fc``).

Each batch runs the forward phase (T steps, no graph), the loss on the readout of the equilibrium rates,
and the backward phase: ``'spide'`` with the ternary neuron couples over ``T_back`` steps, ``'ide'`` with the
numerical solver; the optimizer then steps as for any method. ``T_back``/``grad_scale``/``solver`` given
here override the model's for the run; the model's own options are restored after each batch.
"""
from __future__ import annotations

import dataclasses
import warnings

import torch.nn as nn

from ..train.methods import Method, register_method
from .network import feedback_networks, gradient
from .options import SpideOptions

__all__ = ["Spide", "CoarseEquilibriumWarning", "COARSE_BOUND"]

COARSE_BOUND = 0.1  # the spike approximation error of a rate above which check() warns


class CoarseEquilibriumWarning(UserWarning):
    """T (or the leak) makes the average rates too coarse an approximation of the equilibrium."""


class Spide(Method):
    """Implicit differentiation on the equilibrium state of the model's feedback networks, by spikes
    (``grad='spide'``) or numerically (``grad='ide'``)."""

    def __init__(self, grad: str = "spide", **options):
        if grad not in ("spide", "ide"):
            raise ValueError(f"method spide: grad must be 'spide' or 'ide', got {grad!r}")
        fields = {f.name for f in dataclasses.fields(SpideOptions)} - {"grad"}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise ValueError(f"method {grad!r} takes no option(s) {unknown}; accepted: {sorted(fields)}")
        SpideOptions(grad=grad, **options)  # checks the values
        self.name, self.grad, self.options = grad, grad, options

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.grad}({extra})" if extra else self.grad

    def check(self, model: nn.Module, x_seq=None) -> None:
        super().check(model, x_seq)
        nets = feedback_networks(model)  # a model without one is a NoFeedbackError naming it
        if x_seq is not None:
            T = int(x_seq.shape[0])
            for net in nets:
                bound = net.neuron.error_bound(T)
                if bound > COARSE_BOUND:
                    warnings.warn(f"method {self.grad!r}: with T={T} and leak {net.neuron.leak:g} the rates carry an "
                                  f"approximation error up to {bound:.3g} (1/(2T) for IF neurons), so the equilibrium "
                                  f"SPIDE differentiates is coarse; use T >= {_enough_T(net.neuron)} or a leak closer "
                                  f"to 1 (neuron 'if', or 'lif' with a larger tau)", CoarseEquilibriumWarning,
                                  stacklevel=2)

    def run(self, model, x_seq, y, step):
        with gradient(model, self.grad, **self.options):
            return super().run(model, x_seq, y, step)


def _enough_T(neuron) -> int | str:
    """The smallest T whose error bound is within COARSE_BOUND (a phrase when no T is)."""
    for T in range(1, 10001):
        if neuron.error_bound(T) <= COARSE_BOUND:
            return T
    return "more steps than a leak this strong allows"


def _spide(T_back: int | None = None, grad_scale=None, **options) -> Spide:
    return Spide("spide", **_given(T_back=T_back, grad_scale=grad_scale), **options)


def _ide(solver: str | None = None, tol: float | None = None, max_iter: int | None = None, **options) -> Spide:
    return Spide("ide", **_given(solver=solver, tol=tol, max_iter=max_iter), **options)


def _given(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


register_method("spide", _spide, replace=True)
register_method("ide", _ide, replace=True)
