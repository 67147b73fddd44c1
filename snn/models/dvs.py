"""The small feedback network SPIDE (Xiao et al. 2023) trains on CIFAR10-DVS (its ``ConvNet-F``).

One hidden layer of spiking neurons with a convolutional feedback onto itself::

    S[t] = SN(C_x(x[t]) + C_s(S[t-1])),  S[-1] = 0        C_x: Conv9x9 stride 2 (in → 512, bias)
                                                           C_s: Conv5x5 (512 → 512, no bias)
    readout: AdaptiveAvgPool(pool) → Flatten → Linear → currents [T, B, num_classes]

SPIDE reads the 24x24 map of its 48x48 frames in full (``pool=24``) and solves for the equilibrium of the
feedback layer with implicit differentiation; here the layer runs step by step and trains by BPTT (or any
method of :mod:`snn.train`), and ``pool`` fits the readout to any input size. SPIDE draws both convolutions by
He's initialisation for its IF neurons and frames of event counts; here they are drawn by
:func:`snn.models.blocks.init_synapse` (``init_gain`` = 4 for the input, ``feedback_gain`` = 1 for the
feedback), so that leaky neurons fire from the first batch on sparse event frames too (6 % of the hidden
neurons on the event-FMNIST stand-in; 1.4 % at the gain 2 of the presets).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import layers
from ..base import MemoryModule, watch_backward
from .blocks import carried_state, init_synapse, readout, scaled
from .registry import register_model

__all__ = ["FeedbackConv", "convnet_f"]


class FeedbackConv(MemoryModule):
    """``S[t] = SN(C_x(x[t]) + C_s(S[t-1]))``: a spiking conv layer with convolutional feedback.

    Input ``[T, B, C, H, W]`` (``'m'``; ``C_x`` runs on all steps at once) or ``[B, C, H, W]`` (``'s'``); the last
    spikes are state, cleared by :func:`snn.functional.reset`."""

    def __init__(self, c_in: int, c_hidden: int, neuron, *, kernel_x: int = 9, stride_x: int = 2,
                 kernel_s: int = 5, step_mode: str = "m"):
        super().__init__(step_mode)
        self.input = layers.Conv2d(c_in, c_hidden, kernel_x, stride_x, kernel_x // 2, step_mode=step_mode)
        self.feedback = nn.Conv2d(c_hidden, c_hidden, kernel_s, padding=kernel_s // 2, bias=False)
        self.neuron = neuron()
        self.reset()

    def reset(self) -> None:
        self.s = None
        self._backward_token = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.input.step_mode = self.step_mode
        self.neuron.step_mode = "s"
        cur = self.input(x)
        cur = cur.unsqueeze(0) if self.step_mode == "s" else cur
        s = carried_state(self, self.s, cur.shape[1:], "FeedbackConv")
        out = []
        for c_t in cur:
            s = self.neuron(c_t if s is None else c_t + self.feedback(s))
            out.append(s)
        self.s = s
        y = torch.stack(out)
        self._backward_token = watch_backward(y)
        return y[0] if self.step_mode == "s" else y


def convnet_f(*, num_classes, in_channels, neuron, hidden=512, kernel_x=9, stride_x=2, kernel_s=5, pool=24,
              dropout=0.0, width=1.0, init_gain=4.0, feedback_gain=1.0) -> nn.Sequential:
    """SPIDE's CIFAR10-DVS network (module docstring): ``hidden`` feedback channels (times ``width``)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"convnet_f: dropout must lie in [0, 1), got {dropout!r}")
    (c,) = scaled([hidden], width)
    drop = [layers.Dropout(dropout, step_mode="m")] if dropout else []
    layer = FeedbackConv(int(in_channels), c, neuron, kernel_x=kernel_x, stride_x=stride_x, kernel_s=kernel_s)
    init_synapse(layer.input, init_gain)
    init_synapse(layer.feedback, feedback_gain)
    return nn.Sequential(layer, *drop, *readout(c, num_classes, pool))


register_model("convnet_f", convnet_f)
