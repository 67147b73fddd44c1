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
from ..base import guard_carried_state

__all__ = ["ScaledWSConv2d", "init_synapse", "INIT_GAIN", "WS_GAIN", "NORMS", "conv", "norm2d", "conv_norm",
           "check_norm", "kaiming_init", "readout", "scaled", "carried_state"]

INIT_GAIN = 2.0
WS_GAIN = 5.0  # the zoo's initial gain of weight-standardised convs (LIF layers fire on [0, 1]-scale input)
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


def check_norm(norm) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; accepted: {NORMS}")
    return norm


def conv(c_in: int, c_out: int, norm: str, *, kernel_size: int = 3, stride: int = 1, padding: int | None = None,
         ws_gain: float = 1.0, init_gain: float = INIT_GAIN) -> nn.Module:
    """The convolution (step mode 'm', padding ``kernel_size // 2`` unless given) of a layer normalised by
    ``norm``: without bias for ``'bn'`` (the BatchNorm has one), :class:`ScaledWSConv2d` with initial gain
    ``ws_gain`` for ``'ws'`` (works one step at a time, for OTTT), drawn by :func:`init_synapse` for ``'none'``."""
    pad = kernel_size // 2 if padding is None else padding
    kw = dict(kernel_size=kernel_size, stride=stride, padding=pad, step_mode="m")
    if check_norm(norm) == "bn":
        return layers.Conv2d(c_in, c_out, bias=False, **kw)
    if norm == "ws":
        return ScaledWSConv2d(c_in, c_out, gain_init=ws_gain, **kw)
    return init_synapse(layers.Conv2d(c_in, c_out, **kw), init_gain)


def norm2d(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d (statistics over batch and time) for ``'bn'``, identity otherwise."""
    return layers.BatchNorm2d(channels, step_mode="m") if check_norm(norm) == "bn" else nn.Identity()


def conv_norm(c_in: int, c_out: int, norm: str, **kw) -> list[nn.Module]:
    """:func:`conv` followed by its BatchNorm2d for ``'bn'`` (just the conv otherwise)."""
    c = conv(c_in, c_out, norm, **kw)
    return [c, layers.BatchNorm2d(c_out, step_mode="m")] if norm == "bn" else [c]


def kaiming_init(model: nn.Module) -> nn.Module:
    """He initialisation of every convolution (``N(0, 2/fan_out)``, zero bias), as torchvision's ResNets and
    the OTTT/DSR networks draw them; BatchNorm at weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def readout(channels: int, num_classes: int, pool: int = 1) -> list[nn.Module]:
    """AdaptiveAvgPool2d(pool) → Flatten → Linear: a ``[T, B, channels, H, W]`` map of any size to the readout
    currents ``[T, B, num_classes]``."""
    return [layers.AdaptiveAvgPool2d(pool, step_mode="m"), layers.Flatten(step_mode="m"),
            layers.Linear(channels * pool * pool, num_classes, step_mode="m")]


def scaled(channels, width: float) -> list[int]:
    """``channels`` times the width multiplier ``width`` (rounded, at least 1)."""
    if not (isinstance(width, (int, float)) and not isinstance(width, bool) and math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a finite number > 0 (a multiplier of the channel counts), got {width!r}")
    return [max(1, round(c * width)) for c in channels]


def carried_state(module: nn.Module, state: torch.Tensor | None, shape, who: str) -> torch.Tensor | None:
    """``state`` carried into this call of ``module`` (None after a reset): it must have the step's ``shape``
    and must not lead into a graph a backward pass already freed (``module._backward_token``)."""
    if state is None:
        return None
    if tuple(state.shape) != tuple(shape):
        raise ValueError(f"{who}: an input step of shape {tuple(shape)} differs from the carried state's "
                         f"{tuple(state.shape)}; call snn.functional.reset(net) between batches")
    return guard_carried_state(state, module._backward_token, who)
