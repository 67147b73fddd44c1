"""SPIDE: spike-based implicit differentiation on the equilibrium state of feedback spiking networks
(Xiao et al., Neural Networks 2023).

A :class:`FeedbackSNN` runs T steps of spikes to the equilibrium of its average firing rates (no autograd
graph: memory independent of T); its gradient is the implicit differentiation of that equilibrium, solved
either with spikes of ternary neuron couples over ``T_back`` steps (``grad='spide'``) or numerically
(``grad='ide'``, the reference), and turned into a local weight update from the two phases' rates.

>>> net = snn.spide.models.spide_fc(in_shape=(1, 8, 8), hidden=64)         # [T, B, 1, 8, 8] -> [T, B, 10]
>>> with snn.spide.gradient(net, "spide", T_back=100):                      # default: BPTT, as any snn model
...     loss = F.cross_entropy(net(encoding.direct(x, 30)).mean(0), y)
...     loss.backward()                                                      # SPIDE gradients
>>> optimizer.step()

Modules: :mod:`.neuron` (the modified-reset neuron, the ternary couple), :mod:`.structure` (affine
connections), :mod:`.options` (SpideOptions), :mod:`.network` (the network and its rate equation),
:mod:`.equilibrium` (forward phase, equilibrium check), :mod:`.ide` (the linear system, numerical solvers),
:mod:`.backward` (spiking backward phase), :mod:`.update` (weight update), :mod:`.function` (autograd),
:mod:`.norm` (feedback norm cap), :mod:`.models` (builders), :mod:`.zoo` (``snn.models.get('spide-fc')``),
:mod:`.method` (``fit(method='spide' | 'ide')``, ``snn train --method spide``), :mod:`.train` (a small loop
that reports both phases' firing rates), :mod:`.convergence` (gradient error vs ``T_back``), :mod:`.cli`
(``snn spide``).
"""
from __future__ import annotations

from .equilibrium import EquilibriumError, EquilibriumWarning, rate_equilibrium, simulate
from .function import SpideFunction, adjoint_rates, equilibrium_rates
from .network import FeedbackSNN, NoFeedbackError, feedback_networks, gradient
from .neuron import ForwardNeuron, TernaryCouple
from .options import SpideOptions
from .structure import register_affine

__all__ = ["FeedbackSNN", "ForwardNeuron", "TernaryCouple", "SpideOptions", "SpideFunction", "EquilibriumWarning",
           "EquilibriumError", "NoFeedbackError", "simulate", "rate_equilibrium", "equilibrium_rates",
           "adjoint_rates", "feedback_networks", "gradient", "register_affine"]
