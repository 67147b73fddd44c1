"""Synapses shared by the models: scaled weight-standardised convolution, the spiking-layer initialisation,
and a convolution with its normalisation (``norm`` = ``'bn'`` | ``'ws'`` | ``'none'``).

Initialisation: a synapse that feeds a spiking layer directly (no normalisation after it) draws
``W ~ N(0, (init_gain / sqrt(fan_in))²)`` (:func:`init_synapse`). Its current then has
``std = init_gain·sqrt(E[x²])`` (≈ 0.97 for the digits, 0.91 for Fashion-MNIST at the default
``init_gain = 2``, whose pixels have ``E[x²]`` 0.235 and 0.206), the same order as the threshold 1, so a
share of the neurons fires from the first batch on. PyTorch's default (``Var W = 1/(3·fan_in)``) gives
``std ≈ 0.3``, while a LIF neuron (tau 2, T 4) needs a constant current of 16/15 to fire once: the
hidden layer starts silent. Normalised synapses (BatchNorm, weight standardisation) keep their own scale.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import layers

__all__ = ["ScaledWSConv2d", "init_synapse", "INIT_GAIN", "NORMS", "conv_norm"]

INIT_GAIN = 2.0
NORMS = ("bn", "ws", "none")


class ScaledWSConv2d(layers.Conv2d):
    r"""Conv2d with scaled weight standardisation (Brock et al. 2021), OTTT's replacement for BatchNorm.

    Ŵ[o] = gain[o] · (W[o] - mean(W[o])) / sqrt(var(W[o])·N + eps),  N = fan-in = C_in·k_h·k_w.
    The normalisation is a function of the weights only, so it works one time step at a time.
    """

    def __init__(self, *args, gain: bool = True, gain_init: float = 1.0, eps: float = 1e-4, **kw):
        super().__init__(*args, **kw)
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1, 1), float(gain_init))) if gain else None
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        fan_in = w[0].numel()
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var * fan_in + self.eps)
        return w * self.gain if self.gain is not None else w

    def _conv_forward(self, x, weight, bias):  # called by nn.Conv2d.forward
        return super()._conv_forward(x, self.standardized_weight(), bias)


def init_synapse(layer: nn.Module, gain: float = INIT_GAIN) -> nn.Module:
    """Draw ``layer.weight ~ N(0, (gain / sqrt(fan_in))²)`` in place (fan_in = inputs per output unit), so that
    inputs with second moment ``E[x²]`` give currents of std ``gain·sqrt(E[x²])``. Returns ``layer``."""
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"init_gain must be a finite number > 0, got {gain!r}")
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
    return layer


def conv_norm(c_in: int, c_out: int, norm: str, *, kernel_size: int = 3, stride: int = 1,
              padding: int | None = None, ws_gain: float = 1.0, init_gain: float = INIT_GAIN) -> list[nn.Module]:
    """A convolution (step mode 'm', padding ``kernel_size // 2`` unless given) and its normalisation:

    - ``'bn'``: Conv (no bias) → BatchNorm2d (statistics over batch and time);
    - ``'ws'``: :class:`ScaledWSConv2d` with initial gain ``ws_gain`` (works one step at a time, for OTTT);
    - ``'none'``: Conv drawn by :func:`init_synapse` with ``init_gain``.
    """
    pad = kernel_size // 2 if padding is None else padding
    conv = dict(kernel_size=kernel_size, stride=stride, padding=pad, step_mode="m")
    if norm == "bn":
        return [layers.Conv2d(c_in, c_out, bias=False, **conv), layers.BatchNorm2d(c_out, step_mode="m")]
    if norm == "ws":
        return [ScaledWSConv2d(c_in, c_out, gain_init=ws_gain, **conv)]
    if norm == "none":
        return [init_synapse(layers.Conv2d(c_in, c_out, **conv), init_gain)]
    raise ValueError(f"unknown norm {norm!r}; accepted: {NORMS}")
