r"""A recurrent spiking network for audio spike trains (Spiking Heidelberg Digits style).

Input ``[T, B, in_channels]`` (700 cochlear channels on SHD; trailing dims are flattened per step)::

    S_1[t] = SN(W_in·x[t] + b + W_rec·S_1[t-1])             snn.recurrent.Recurrent, any neuron family
    S_l[t] = SN(W_l·S_{l-1}[t] + b_l + W_rec,l·S_l[t-1])     one layer per entry of ``hidden``
    U[t]   = U[t-1] + (W_o·S_L[t] + b_o - U[t-1]) / tau_o    leaky (non-spiking) readout, U[-1] = 0

The output is the readout membrane ``U`` at every step, ``[T, B, num_classes]`` (SHD's baselines, Cramer et
al. 2020 and Zenke & Vogels 2021, read out leaky integrators like this one and take their maximum or mean over
time). ``recurrent=False`` drops ``W_rec`` (a feed-forward SNN for comparison). The input weights are drawn by
:func:`snn.models.blocks.init_synapse`, the recurrent weights uniformly in ``±1/sqrt(hidden)``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import layers
from ..base import MemoryModule, watch_backward
from ..checks import check_range
from ..recurrent import Recurrent
from .blocks import INIT_GAIN, carried_state, init_synapse
from .registry import register_model

__all__ = ["LeakyIntegrator", "rsnn"]


class LeakyIntegrator(MemoryModule):
    """A leaky, non-spiking integrator: ``U[t] = U[t-1] + (X[t] - U[t-1]) / tau``, ``U[-1] = 0``; returns ``U``.

    NIR's ``LI`` node (``r = 1``, ``v_leak = 0``) under forward Euler with ``dt = 1``."""

    def __init__(self, tau: float = 5.0, step_mode: str = "m"):
        super().__init__(step_mode)
        self.tau = check_range(tau, "tau", "LeakyIntegrator", low=1.0)
        self.reset()

    def reset(self) -> None:
        self.v = None
        self._backward_token = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0) if self.step_mode == "s" else x
        v = carried_state(self, self.v, x_seq.shape[1:], "LeakyIntegrator")
        v = torch.zeros_like(x_seq[0]) if v is None else v
        out = []
        for x_t in x_seq:
            v = v + (x_t - v) / self.tau
            out.append(v)
        self.v = v
        y = torch.stack(out)
        self._backward_token = watch_backward(y)
        return y[0] if self.step_mode == "s" else y

    def extra_repr(self) -> str:
        return f"tau={self.tau}, step_mode={self.step_mode!r}"


def rsnn(*, num_classes, in_channels, neuron, hidden=(256,), recurrent=True, readout_tau=5.0, dropout=0.0,
         init_gain=INIT_GAIN) -> nn.Sequential:
    """Recurrent spiking layers of sizes ``hidden`` and a leaky readout (module docstring)."""
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"rsnn: hidden must be a non-empty list of positive layer sizes, got {hidden!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"rsnn: dropout must lie in [0, 1), got {dropout!r}")
    mods: list[nn.Module] = [layers.Flatten(step_mode="m")]
    n_in = int(in_channels)
    for n in hidden:
        if recurrent:
            mods.append(init_synapse(Recurrent(n_in, n, neuron(), step_mode="m"), init_gain))
        else:
            mods += [init_synapse(layers.Linear(n_in, n, step_mode="m"), init_gain), neuron()]
        if dropout:
            mods.append(layers.Dropout(dropout, step_mode="m"))
        n_in = n
    mods += [layers.Linear(n_in, num_classes, step_mode="m"), LeakyIntegrator(readout_tau)]
    return nn.Sequential(*mods)


register_model("rsnn", rsnn)
