"""``FeedbackSNN``: a feedback spiking network, trained by SPIDE (or IDE, or BPTT), and its rate equation.

Layers ``0..N-1`` of the forward neurons (:mod:`snn.spide.neuron`) with affine connections: ``input_map``
(``F``) from the input to layer 0, ``maps[l]`` (``W_l``) from layer ``l`` to ``l+1``, and ``feedback``
(``W_fb``) from the last layer back to layer 0. One time step::

    layer 0:    I_0[t] = F·x[t] + W_fb·s_{N-1}[t-1]      (no feedback at t = 0)
    layer l+1:  I_{l+1}[t] = W_l·s_l[t]

With ``N = 1`` (``maps`` empty) this is the single-layer feedback network ``I[t] = F·x[t] + W·s[t-1]``; with
``N > 1`` it is the paper's multi-layer feedback structure. The average rates approach the equilibrium of
the rate equation (``c = V_th - u_rest``, ``σ = clamp(·, 0, 1)``)::

    a_0 = σ((F·x̄ + W_fb·a_{N-1}) / c),     a_{l+1} = σ(W_l·a_l / c)

The output is ``a_{N-1}`` (``[B, ...]``). The forward phase runs the T steps of the input ``[T, B, ...]``
without an autograd graph; gradients come from :mod:`snn.spide.function` (``options.grad``: ``'spide'`` or
``'ide'``), or from BPTT through the T steps (``'bptt'``, surrogate gradients, memory growing with T).
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Sequence

import torch
import torch.nn as nn

from ..checks import all_finite
from .neuron import ForwardNeuron, TernaryCouple
from .options import SpideOptions
from .structure import check_affine

__all__ = ["FeedbackSNN", "NoFeedbackError", "feedback_networks", "gradient"]


class NoFeedbackError(ValueError):
    """A model without the feedback structure SPIDE trains."""


class FeedbackSNN(nn.Module):
    """A feedback spiking network (module docstring).

    ``neuron``: the forward neuron (IF/LIF with the modified reset); ``couple``: the backward phase's ternary
    neuron couples (default: threshold 0.5, the forward neuron's leak); ``options``: :class:`SpideOptions`.
    ``surrogate``/``detach_reset``/``backend`` configure the snn neuron modules that run the steps (the
    surrogate matters only for ``grad='bptt'``). After each call ``last_stats`` holds ``forward_rate`` (spikes
    per neuron and step), ``residual`` (of the rate equation) and, after a SPIDE backward pass,
    ``backward_rate`` (ternary spikes per couple and step), ``backward_peak`` (largest |β| in spike sizes) and
    ``backward_saturated`` (the share of couples that fired at every step: their error is clipped; lower
    ``auto_level`` or ``grad_scale`` if it is not small); after an IDE pass ``ide_iterations``.
    """

    def __init__(self, input_map: nn.Module, feedback: nn.Module | None, maps: Sequence[nn.Module] = (), *,
                 neuron: ForwardNeuron | None = None, couple: TernaryCouple | None = None,
                 options: SpideOptions | None = None, surrogate="atan", detach_reset: bool = False,
                 backend: str = "auto"):
        super().__init__()
        who = "FeedbackSNN"
        if feedback is None:
            raise NoFeedbackError(f"{who}: feedback is None; SPIDE trains feedback networks, whose last layer "
                                  f"feeds back into the first (give feedback=nn.Linear(last, first) or a conv)")
        self.input_map = check_affine(input_map, "input_map", who)
        self.maps = nn.ModuleList([check_affine(m, f"maps.{i}", who) for i, m in enumerate(maps)])
        self.feedback = check_affine(feedback, "feedback", who)
        self.neuron = neuron if neuron is not None else ForwardNeuron()
        self.couple = couple if couple is not None else TernaryCouple(leak=self.neuron.leak)
        for name, value, cls in (("neuron", self.neuron, ForwardNeuron), ("couple", self.couple, TernaryCouple),
                                 ("options", options or SpideOptions(), SpideOptions)):
            if not isinstance(value, cls):
                raise TypeError(f"{who}: {name} must be a snn.spide.{cls.__name__}, got {type(value).__name__}")
        self.options = options or SpideOptions()
        self.cells = nn.ModuleList([self.neuron.cell(surrogate=surrogate, detach_reset=detach_reset,
                                                     backend=backend) for _ in range(self.num_layers)])
        self.last_stats: dict = {}

    @property
    def num_layers(self) -> int:
        return len(self.maps) + 1

    def set_options(self, **changes) -> "FeedbackSNN":
        """Replace some options (``net.set_options(grad='ide', T_back=250)``), checked as on construction."""
        self.options = dataclasses.replace(self.options, **changes)
        return self

    # -- the connections ---------------------------------------------------------------------------
    def connections(self):
        """``(name, module, target layer, source)`` of every connection; source is ``'x'`` or a layer index."""
        out = [("input_map", self.input_map, 0, "x"), ("feedback", self.feedback, 0, self.num_layers - 1)]
        out += [(f"maps.{i}", m, i + 1, i) for i, m in enumerate(self.maps)]
        return out

    def current(self, layer: int, below, drive=None, fed_back=None):
        """The input current of ``layer`` from the activity ``below`` of layer ``layer - 1`` (layer > 0), or from
        the input drive ``F·x`` plus ``W_fb`` applied to the last layer's ``fed_back`` activity (layer 0)."""
        if layer > 0:
            return self.maps[layer - 1](below)
        return drive if fed_back is None else drive + self.feedback(fed_back)

    def rate_map(self, rates, drive, fed_back=None):
        """One pass of the rate equation: new rates from ``rates`` (the last layer's, or ``fed_back``, is fed
        back) and the input drive ``F·x̄``."""
        c = self.neuron.scale
        out = [(self.current(0, None, drive, rates[-1] if fed_back is None else fed_back) / c).clamp(0.0, 1.0)]
        for layer in range(1, self.num_layers):
            out.append((self.current(layer, out[-1]) / c).clamp(0.0, 1.0))
        return out

    # -- checks ------------------------------------------------------------------------------------
    def check_input(self, x_seq) -> None:
        """``x_seq``: a real floating tensor ``[T, B, ...]`` with T >= 1, finite; finite parameters."""
        who = "FeedbackSNN"
        if not isinstance(x_seq, torch.Tensor) or not x_seq.is_floating_point():
            raise TypeError(f"{who}: input must be a floating-point tensor [T, B, ...], got "
                            f"{type(x_seq).__name__}{'' if not isinstance(x_seq, torch.Tensor) else ' ' + str(x_seq.dtype)}")
        if x_seq.dim() < 2 or x_seq.shape[0] < 1:
            raise ValueError(f"{who}: input must be [T, B, ...] with T >= 1 time steps, got shape {tuple(x_seq.shape)}")
        if not all_finite(x_seq):
            raise ValueError(f"{who}: input contains NaN or Inf")
        for name, p in self.named_parameters():
            if not all_finite(p):
                raise ValueError(f"{who}: parameter {name!r} contains NaN or Inf; the equilibrium rates would be "
                                 f"meaningless (lower the learning rate or check the gradients)")

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Equilibrium rates of the last layer ``[B, ...]`` for the input ``[T, B, ...]``."""
        from .function import equilibrium_rates

        return equilibrium_rates(self, x_seq)


@contextmanager
def gradient(model: nn.Module, grad: str = "spide", **options):
    """Within the block, every :class:`FeedbackSNN` of ``model`` computes its gradient by ``grad``
    (``'spide'``, ``'ide'`` or ``'bptt'``) with the other ``options`` changed (:class:`SpideOptions` fields);
    their options are restored after."""
    nets = feedback_networks(model)
    before = [net.options for net in nets]
    try:
        for net in nets:
            net.set_options(grad=grad, **options)
        yield nets
    finally:
        for net, opts in zip(nets, before):
            net.options = opts


def feedback_networks(model: nn.Module) -> list[FeedbackSNN]:
    """The :class:`FeedbackSNN` modules of ``model``, or a :class:`NoFeedbackError` naming the model when there
    are none."""
    found = [m for m in model.modules() if isinstance(m, FeedbackSNN)]
    if not found:
        raise NoFeedbackError(f"{type(model).__name__} has no feedback spiking network (snn.spide.FeedbackSNN); "
                              f"SPIDE trains networks whose equilibrium rates it differentiates: build one with "
                              f"snn.spide.FeedbackSNN or a registered feedback model ('spide-fc', 'spide-mlp', "
                              f"'spide-conv')")
    return found
