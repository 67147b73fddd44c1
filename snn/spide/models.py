"""Feedback models for SPIDE: the single-layer feedback network, the multi-layer feedback MLP and the
paper's convolutional feedback structure, each with a linear readout of the equilibrium rates.

Every model takes ``[T, B, C, H, W]`` and returns the readout of the last layer's equilibrium rates at
every step, ``[T, B, num_classes]`` (the same logits at each step, so the mean over time is the logits):

- ``spide_fc``:   I[t] = F·x[t] + W·s[t-1]                      (one layer of ``hidden`` neurons)
- ``spide_mlp``:  layer 0 from F·x[t] + W_fb·s_{N-1}[t-1], then Linear layers ``hidden[1:]``
- ``spide_conv``: the paper's MNIST structure: conv5x5/2 (input) → layer 0 → conv5x5/2 → layer 1 →
  conv5x5 → layer 2, and a transposed conv3x3/2 feedback from layer 2 to layer 0.

The feedback weight's Frobenius norm is capped at ``feedback_norm`` (:mod:`.norm`, None: free); the input
synapses are drawn by :func:`snn.models.init_synapse` with ``init_gain``, the feedback with ``feedback_gain``.
They are registered as ``'spide-fc'``, ``'spide-mlp'`` and ``'spide-conv'`` in :mod:`snn.models` (neuron
``'if'`` by default, or ``'lif'`` whose ``tau`` sets the leak ``λ = 1 - 1/tau``, default tau 20).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from ..checks import check_int
from ..models.blocks import init_synapse
from .network import FeedbackSNN
from .neuron import ForwardNeuron, TernaryCouple
from .norm import cap_weight_norm
from .options import SpideOptions

__all__ = ["SpideClassifier", "spide_fc", "spide_mlp", "spide_conv"]


class SpideClassifier(nn.Module):
    """``body`` (a :class:`FeedbackSNN`) and a linear ``readout`` of its output rates:
    ``[T, B, ...] → [T, B, num_classes]``."""

    def __init__(self, body: FeedbackSNN, readout: nn.Module):
        super().__init__()
        if not isinstance(body, FeedbackSNN):
            raise TypeError(f"SpideClassifier: body must be a snn.spide.FeedbackSNN, got {type(body).__name__}")
        self.body, self.readout = body, readout

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        logits = self.readout(self.body(x_seq).flatten(1))
        return logits.unsqueeze(0).expand(x_seq.shape[0], *logits.shape)


def _gaussian(module: nn.Module, gain: float, fan_in: int) -> nn.Module:
    with torch.no_grad():
        module.weight.normal_(0.0, gain / math.sqrt(fan_in))
    return module


def _body(input_map, feedback, maps, *, v_threshold, u_rest, leak, v_threshold_back, T_back, feedback_norm,
          feedback_gain, feedback_fan_in, **cells) -> FeedbackSNN:
    _gaussian(feedback, feedback_gain, feedback_fan_in)
    cap_weight_norm(feedback, feedback_norm)
    return FeedbackSNN(input_map, feedback, maps, neuron=ForwardNeuron(v_threshold, u_rest, leak),
                       couple=TernaryCouple(v_threshold_back, leak=leak), options=SpideOptions(T_back=T_back), **cells)


def _widths(hidden, who: str) -> list[int]:
    hidden = [hidden] if isinstance(hidden, int) and not isinstance(hidden, bool) else list(hidden)
    if not hidden:
        raise ValueError(f"{who}: hidden must name at least one layer width, got {hidden}")
    return [check_int(h, "hidden", who, low=1) for h in hidden]


def spide_mlp(in_shape=(1, 28, 28), hidden: int | Sequence[int] = (256, 128), num_classes: int = 10, *,
              v_threshold: float = 1.0, u_rest: float | None = None, leak: float = 1.0,
              v_threshold_back: float = 0.5, T_back: int = 100, init_gain: float = 2.0,
              feedback_gain: float = 0.5, feedback_norm: float | None = 1.0, surrogate="atan",
              detach_reset: bool = False, backend: str = "auto") -> SpideClassifier:
    """Feedback MLP: Flatten → Linear → layer 0 → [Linear → layer l] for ``hidden[1:]``, the last layer fed back
    to layer 0 by a Linear without bias; readout Linear(hidden[-1], num_classes). ``hidden`` an int: one layer."""
    widths = _widths(hidden, "spide_mlp")
    in_features = math.prod(int(s) for s in in_shape)
    input_map = nn.Sequential(nn.Flatten(), init_synapse(nn.Linear(in_features, widths[0]), init_gain))
    maps = [init_synapse(nn.Linear(a, b), init_gain) for a, b in zip(widths, widths[1:])]
    body = _body(input_map, nn.Linear(widths[-1], widths[0], bias=False), maps, v_threshold=v_threshold,
                 u_rest=u_rest, leak=leak, v_threshold_back=v_threshold_back, T_back=T_back,
                 feedback_norm=feedback_norm, feedback_gain=feedback_gain, feedback_fan_in=widths[-1],
                 surrogate=surrogate, detach_reset=detach_reset, backend=backend)
    return SpideClassifier(body, nn.Linear(widths[-1], num_classes))


def spide_fc(in_shape=(1, 28, 28), hidden: int | Sequence[int] = 256, num_classes: int = 10,
             **kw) -> SpideClassifier:
    """Single-layer feedback network: I[t] = F·x[t] + W·s[t-1], readout of its rates (``kw``: as spide_mlp).
    ``hidden``: its width (or a one-element list)."""
    widths = _widths(hidden, "spide_fc")
    if len(widths) != 1:
        raise ValueError(f"spide_fc has one layer: hidden must be one width, got {widths} (spide_mlp takes several)")
    return spide_mlp(in_shape, widths, num_classes, **kw)


def spide_conv(in_shape=(1, 28, 28), channels: Sequence[int] = (16, 32), num_classes: int = 10, *,
               v_threshold: float = 1.0, u_rest: float | None = None, leak: float = 1.0,
               v_threshold_back: float = 0.5, T_back: int = 100, init_gain: float = 2.0,
               feedback_gain: float = 0.5, feedback_norm: float | None = 2.0, surrogate="atan",
               detach_reset: bool = False, backend: str = "auto") -> SpideClassifier:
    """The paper's convolutional feedback structure (module docstring) with ``channels = (c0, c1)``; H and W
    must be multiples of 4."""
    c_in, h, w = (int(s) for s in in_shape)
    if len(channels) != 2:
        raise ValueError(f"spide_conv: channels must be (c0, c1), got {list(channels)}")
    c0, c1 = (check_int(c, "channels", "spide_conv", low=1) for c in channels)
    if h % 4 or w % 4:
        raise ValueError(f"spide_conv: the input's height and width must be multiples of 4 (two stride-2 "
                         f"convolutions and a stride-2 feedback), got {h}x{w}")
    input_map = init_synapse(nn.Conv2d(c_in, c0, 5, stride=2, padding=2), init_gain)
    maps = [init_synapse(nn.Conv2d(c0, c1, 5, stride=2, padding=2), init_gain),
            init_synapse(nn.Conv2d(c1, c1, 5, stride=1, padding=2), init_gain)]
    feedback = nn.ConvTranspose2d(c1, c0, 3, stride=2, padding=1, output_padding=1, bias=False)
    body = _body(input_map, feedback, maps, v_threshold=v_threshold, u_rest=u_rest, leak=leak,
                 v_threshold_back=v_threshold_back, T_back=T_back, feedback_norm=feedback_norm,
                 feedback_gain=feedback_gain, feedback_fan_in=c1 * 9 // 4, surrogate=surrogate,
                 detach_reset=detach_reset, backend=backend)
    return SpideClassifier(body, nn.Linear(c1 * (h // 4) * (w // 4), num_classes))
