r"""SoftHebb layers: a dense and a convolutional layer that learn with the soft-WTA rule of :mod:`.rule`.

``forward(x)`` returns the pre-activation ``u = W x`` (a plain linear map or convolution, differentiable, so
the same layer can also be trained by backprop for comparison). ``hebbian_update(x)`` runs the local rule on
a batch: it computes ``u``, the soft-WTA ``y`` over the output neurons (for the convolution: over the
channels at every position) and adds ``η Δw`` to the weight, under ``torch.no_grad()``: no autograd graph, no
backward pass. The weight is an ``nn.Parameter`` with ``requires_grad=False`` (call ``requires_grad_(True)``
to train it by backprop instead).

Defaults follow the reference implementation: weights drawn ``N(0, (r/√n)²)`` with ``r = 25`` (norm ≈ 25,
converging to 1), the anti-Hebbian soft-WTA, updates divided by their largest entry, adaptive learning rate
``η (|‖w_k‖ - 1| + 1e-10)^0.5``; the convolution pads by reflection.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from ..checks import check_bool, check_int, check_range
from . import rule

__all__ = ["SoftHebbLinear", "SoftHebbConv2d", "Triangle"]


class _SoftHebb(nn.Module):
    """What both layers share: the rule's hyper-parameters, their checks, and the update."""

    def _setup(self, fan_in: int, shape: tuple, temperature, lr, lr_power, adaptive, normalise, anti_hebbian,
               activation, weight_range, generator) -> None:
        who = type(self).__name__
        self.temperature = check_range(temperature, "temperature", who, low=0, low_open=True)
        self.lr = check_range(lr, "lr", who, low=0, low_open=True)
        self.lr_power = check_range(lr_power, "lr_power", who, low=0)
        self.adaptive = check_bool(adaptive, "adaptive", who)
        self.normalise = check_bool(normalise, "normalise", who)
        self.anti_hebbian = check_bool(anti_hebbian, "anti_hebbian", who)
        if activation not in rule.ACTIVATIONS:
            raise ValueError(f"{who}: activation must be one of {rule.ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        weight_range = check_range(weight_range, "weight_range", who, low=0, low_open=True)
        w = torch.randn(shape, generator=generator) * (weight_range / math.sqrt(fan_in))
        self.weight = nn.Parameter(w, requires_grad=False)
        self.updates = 0

    def norms(self) -> torch.Tensor:
        """``‖w_k‖`` of every neuron (``[K]``); the rule drives them to 1."""
        return self.weight.detach().flatten(1).norm(dim=1)

    def _step(self, w: torch.Tensor, delta: torch.Tensor, lr, adaptive) -> None:
        """``w += η Δw`` with the layer's rate, or ``lr``/``adaptive`` when given (test-time learning)."""
        lr = self.lr if lr is None else check_range(lr, "lr", type(self).__name__, low=0, low_open=True)
        adaptive = self.adaptive if adaptive is None else check_bool(adaptive, "adaptive", type(self).__name__)
        rule.apply_update(w, delta, lr, adaptive, self.lr_power, self.normalise)
        self.updates += 1

    def _modulation(self, modulation, batch: int) -> torch.Tensor | None:
        if modulation is None:
            return None
        who = type(self).__name__
        rule.check_input(modulation, "modulation", who, 1)
        if modulation.shape[0] != batch:
            raise ValueError(f"{who}: modulation needs one value per sample ({batch}), got {modulation.shape[0]}")
        return modulation.to(self.weight.dtype)

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, lr={self.lr}, adaptive={self.adaptive}, "
                f"anti_hebbian={self.anti_hebbian}, activation={self.activation!r}")


class SoftHebbLinear(_SoftHebb):
    """A dense SoftHebb layer of ``out_features`` competing neurons over ``in_features`` inputs.

    Parameters: ``temperature`` τ of the soft-WTA (> 0), ``lr`` η (> 0), ``lr_power`` p of the adaptive rate,
    ``adaptive``, ``normalise``, ``anti_hebbian``, ``activation`` ('softmax' or 'linear', see :mod:`.rule`),
    ``weight_range`` r of the initial weights, ``generator`` for the initial draw.
    """

    def __init__(self, in_features: int, out_features: int, temperature: float = 1 / 12, lr: float = 0.045,
                 lr_power: float = 0.5, adaptive: bool = True, normalise: bool = True, anti_hebbian: bool = True,
                 activation: str = "softmax", weight_range: float = 25.0, generator: torch.Generator | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", "SoftHebbLinear", 1)
        self.out_features = check_int(out_features, "out_features", "SoftHebbLinear", 1)
        self._setup(self.in_features, (self.out_features, self.in_features), temperature, lr, lr_power, adaptive,
                    normalise, anti_hebbian, activation, weight_range, generator)

    def _check(self, x, name: str = "x") -> torch.Tensor:
        rule.check_input(x, name, "SoftHebbLinear", 2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"SoftHebbLinear: {name} has {x.shape[1]} features, the layer expects "
                             f"in_features={self.in_features}")
        return x.to(self.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``u = x Wᵀ`` for ``x`` ``[B, in_features]``."""
        return F.linear(self._check(x), self.weight)

    @torch.no_grad()
    def hebbian_update(self, x: torch.Tensor, modulation: torch.Tensor | None = None, lr: float | None = None,
                       adaptive: bool | None = None) -> torch.Tensor:
        """One plasticity step on the rows of ``x`` (``[B, in_features]``), each sample's factor ``y`` scaled by
        ``modulation`` (``[B]``) if given; ``lr``/``adaptive`` override the layer's for this step. Returns ``u``."""
        x = self._check(x)
        m = self._modulation(modulation, x.shape[0])
        w = self.weight
        u = x @ w.t()
        y = rule.postsynaptic(u, self.activation, self.temperature, 1, self.anti_hebbian)
        self._step(w, rule.hebbian_delta(x, u, y, w, m), lr, adaptive)
        return u


class SoftHebbConv2d(_SoftHebb):
    """A convolutional SoftHebb layer: ``out_channels`` competing kernels (the soft-WTA runs over the channels at
    every output position). Takes ``[B, in_channels, H, W]``; ``padding`` pads by reflection (``padding_mode``
    'reflect', or 'zeros'). The rule's parameters are those of :class:`SoftHebbLinear`; the default temperature
    is the reference's first convolution's (t_invert = 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=5, stride=1, padding=0, dilation=1,
                 padding_mode: str = "reflect", temperature: float = 1.0, lr: float = 0.08, lr_power: float = 0.5,
                 adaptive: bool = True, normalise: bool = True, anti_hebbian: bool = True,
                 activation: str = "softmax", weight_range: float = 25.0, generator: torch.Generator | None = None):
        super().__init__()
        who = "SoftHebbConv2d"
        self.in_channels = check_int(in_channels, "in_channels", who, 1)
        self.out_channels = check_int(out_channels, "out_channels", who, 1)
        self.kernel_size = tuple(check_int(k, "kernel_size", who, 1) for k in _pair(kernel_size))
        self.stride = tuple(check_int(s, "stride", who, 1) for s in _pair(stride))
        self.dilation = tuple(check_int(d, "dilation", who, 1) for d in _pair(dilation))
        self.padding = tuple(check_int(p, "padding", who, 0) for p in _pair(padding))
        if padding_mode not in ("reflect", "zeros"):
            raise ValueError(f"{who}: padding_mode must be 'reflect' or 'zeros', got {padding_mode!r}")
        self.padding_mode = padding_mode
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._setup(fan_in, (self.out_channels, self.in_channels, *self.kernel_size), temperature, lr, lr_power,
                    adaptive, normalise, anti_hebbian, activation, weight_range, generator)

    def _pad(self, x, name: str = "x") -> torch.Tensor:
        rule.check_input(x, name, "SoftHebbConv2d", 4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"SoftHebbConv2d: {name} has {x.shape[1]} channels, the layer expects "
                             f"in_channels={self.in_channels}")
        ph, pw = self.padding
        # channels-last: the soft-WTA over channels and the pooling after it run several times faster
        x = x.to(self.weight.dtype)
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), mode="reflect" if self.padding_mode == "reflect" else "constant")
        return x.contiguous(memory_format=torch.channels_last)

    def _conv(self, x_padded: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        u = F.conv2d(x_padded, weight, None, self.stride, 0, self.dilation)
        return u.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``u = W ⋆ x`` (``[B, out_channels, H', W']``)."""
        return self._conv(self._pad(x), self.weight)

    @torch.no_grad()
    def hebbian_update(self, x: torch.Tensor, modulation: torch.Tensor | None = None, lr: float | None = None,
                       adaptive: bool | None = None) -> torch.Tensor:
        """One plasticity step over every output position of every sample of ``x`` (arguments as
        :meth:`SoftHebbLinear.hebbian_update`); returns ``u``."""
        xp = self._pad(x)
        m = self._modulation(modulation, xp.shape[0])
        w = self.weight
        u = self._conv(xp, w)
        y = rule.postsynaptic(u, self.activation, self.temperature, 1, self.anti_hebbian)
        delta = rule.conv_hebbian_delta(xp, u, y, w, self.stride, self.dilation, m)
        self._step(w, delta, lr, adaptive)
        return u

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, " + super().extra_repr())


class Triangle(nn.Module):
    """``relu(u - mean_k u)^p`` over the channel/neuron dimension 1 (see :func:`.rule.triangle`).

    ``r^p`` is increasing, so it commutes with max-pooling: :meth:`rectify` then pooling then :meth:`power_of`
    gives the same values as pooling the activation, at a fraction of the cost of the power."""

    def __init__(self, power: float = 1.0):
        super().__init__()
        self.power = check_range(power, "power", "Triangle", low=0, low_open=True)

    def rectify(self, u: torch.Tensor) -> torch.Tensor:
        return rule.triangle(u, 1.0, 1)

    def power_of(self, r: torch.Tensor) -> torch.Tensor:
        return r if self.power == 1.0 else r ** self.power

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.power_of(self.rectify(u))

    def extra_repr(self) -> str:
        return f"power={self.power}"
