"""Spiking residual networks: Spiking ResNet, SEW-ResNet and PreAct-ResNet, 18 or 34 layers.

Four stages of basic blocks (64, 128, 256, 512 channels times ``width``; 2-2-2-2 blocks for 18 layers,
3-4-6-3 for 34), the first block of stages 2-4 halving the map (stride 2, 1x1 projection shortcut). ``CN``:
a conv and its norm (:func:`snn.models.blocks.conv_norm`: BatchNorm, scaled weight standardisation or none)::

    Spiking ResNet (Hu et al.):   y = SN(CN(SN(CN(x))) + shortcut(x)),   shortcut = CN1x1 or identity
    SEW-ResNet (Fang et al. 2021): A = SN(CN(SN(CN(x)))),  S = SN(CN1x1(x)) or x,  y = g(A, S)
        g: 'ADD' A + S,  'AND' A·S,  'IAND' (1 - A)·S
    PreAct (DSR, Meng et al. 2022): a = SN(N(x)),  y = C(drop(SN(N(C(a))))) + (C1x1(a) or a)

``stem='cifar'``: Conv3x3 (stride 1) for small inputs (32x32 CIFAR, 34x34 N-MNIST, 48x48 DVS);
``'imagenet'``: Conv7x7 stride 2 and 3x3 max pooling (torchvision's). The Spiking and SEW stems are
``SN(CN(x))``; the PreAct stem is the conv alone (each block normalises and fires first) and its network ends
with ``SN(N(·))``. Every network reads out by AdaptiveAvgPool(1) → Flatten → Linear, giving the currents
``[T, B, num_classes]``. DSR's CIFAR network adds an output neuron after a BatchNorm1d of the readout, which
belongs to its training method (:mod:`snn.train.dsr`), not to the model. Convolutions start from He's
initialisation (``norm='none'``: :func:`snn.models.blocks.init_synapse`); weight-standardised ones
(``norm='ws'``, for OTTT) from the gain ``ws_gain`` = 5, at which LIF layers fire at 2-14 % through the
network on the event-FMNIST stand-in (at gain 1 they are silent; 8 drives the deep layers to 25 %).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import layers
from .blocks import WS_GAIN, check_norm, conv, conv_norm, kaiming_init, norm2d, readout, scaled
from .registry import register_model

__all__ = ["SpikingBlock", "SEWBlock", "PreActBlock", "resnet", "CONNECTS", "STEMS", "DEPTHS", "KINDS"]

CONNECTS = ("ADD", "AND", "IAND")
STEMS = ("cifar", "imagenet")
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
KINDS = ("spiking", "sew", "preact")
STAGES = (64, 128, 256, 512)


class SpikingBlock(nn.Module):
    """``SN(CN(SN(CN(x))) + shortcut(x))``: the neuron after the sum (Spiking ResNet)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, neuron, ws_gain: float = WS_GAIN, **_):
        super().__init__()
        g = dict(ws_gain=ws_gain)
        self.body = nn.Sequential(*conv_norm(c_in, c_out, norm, stride=stride, **g), neuron(),
                                  *conv_norm(c_out, c_out, norm, **g))
        self.shortcut = (nn.Sequential(*conv_norm(c_in, c_out, norm, kernel_size=1, stride=stride, **g))
                         if stride != 1 or c_in != c_out else nn.Identity())
        self.sn = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sn(self.body(x) + self.shortcut(x))


class SEWBlock(nn.Module):
    """``g(SN(CN(SN(CN(x)))), S)`` with ``S`` the input spikes or ``SN(CN1x1(x))`` (SEW-ResNet)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, neuron, connect: str = "ADD",
                 ws_gain: float = WS_GAIN, **_):
        super().__init__()
        if connect not in CONNECTS:
            raise ValueError(f"unknown connect {connect!r} (SEW connect function); accepted: {CONNECTS}")
        self.connect = connect
        g = dict(ws_gain=ws_gain)
        self.body = nn.Sequential(*conv_norm(c_in, c_out, norm, stride=stride, **g), neuron(),
                                  *conv_norm(c_out, c_out, norm, **g), neuron())
        self.shortcut = (nn.Sequential(*conv_norm(c_in, c_out, norm, kernel_size=1, stride=stride, **g), neuron())
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, s = self.body(x), self.shortcut(x)
        if self.connect == "ADD":
            return a + s
        if self.connect == "AND":
            return a * s
        return (1.0 - a) * s

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"


class PreActBlock(nn.Module):
    """``a = SN(N(x))``, ``C(drop(SN(N(C(a))))) + (C1x1(a) or a)`` (the pre-activation block of DSR)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, neuron, dropout: float = 0.0,
                 ws_gain: float = WS_GAIN, **_):
        super().__init__()
        g = dict(ws_gain=ws_gain)
        self.pre = nn.Sequential(norm2d(norm, c_in), neuron())
        drop = [layers.Dropout(dropout, step_mode="m")] if dropout else []
        self.body = nn.Sequential(conv(c_in, c_out, norm, stride=stride, **g), norm2d(norm, c_out), neuron(), *drop,
                                  conv(c_out, c_out, norm, **g))
        self.shortcut = (conv(c_in, c_out, norm, kernel_size=1, stride=stride, **g)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        return self.body(a) + self.shortcut(a)


_BLOCKS = {"spiking": SpikingBlock, "sew": SEWBlock, "preact": PreActBlock}


def _stem(kind: str, stem: str, c_in: int, c_out: int, norm: str, neuron, ws_gain: float) -> list[nn.Module]:
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; accepted: {STEMS}")
    big = stem == "imagenet"
    kw = dict(kernel_size=7, stride=2) if big else dict(kernel_size=3, stride=1)
    if kind == "preact":
        mods = [conv(c_in, c_out, norm, ws_gain=ws_gain, **kw)]
    else:
        mods = [*conv_norm(c_in, c_out, norm, ws_gain=ws_gain, **kw), neuron()]
    if big:
        mods.append(layers.MaxPool2d(3, 2, 1, step_mode="m"))
    return mods


def resnet(kind: str, depth: int, *, num_classes: int, in_channels: int, neuron, norm: str = "bn",
           width: float = 1.0, stem: str = "cifar", connect: str = "ADD", dropout: float = 0.0,
           ws_gain: float = WS_GAIN) -> nn.Sequential:
    """A residual network of ``kind`` (``'spiking'``, ``'sew'``, ``'preact'``) and ``depth`` (18, 34); see the
    module docstring. ``connect`` is SEW's connect function, ``dropout`` PreAct's dropout inside each block,
    ``ws_gain`` the initial gain of the weight-standardised convs (``norm='ws'``)."""
    if kind not in _BLOCKS:
        raise ValueError(f"unknown residual block kind {kind!r}; accepted: {KINDS}")
    if depth not in DEPTHS:
        raise ValueError(f"unknown depth {depth!r}; accepted: {sorted(DEPTHS)}")
    check_norm(norm)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{kind} resnet: dropout must lie in [0, 1), got {dropout!r}")
    channels = scaled(STAGES, width)
    mods = _stem(kind, stem, int(in_channels), channels[0], norm, neuron, ws_gain)
    c_in = channels[0]
    for stage, (c_out, n) in enumerate(zip(channels, DEPTHS[depth])):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            mods.append(_BLOCKS[kind](c_in, c_out, stride, norm, neuron, connect=connect, dropout=dropout,
                                      ws_gain=ws_gain))
            c_in = c_out
    if kind == "preact":
        mods += [norm2d(norm, c_in), neuron()]
    net = nn.Sequential(*mods, *readout(c_in, num_classes))
    return kaiming_init(net) if norm != "none" else net


def spiking_resnet18(*, num_classes, in_channels, neuron, norm="bn", width=1.0, stem="cifar", ws_gain=WS_GAIN):
    """Spiking ResNet-18: the neuron after each residual sum."""
    return resnet("spiking", 18, num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm=norm,
                  width=width, stem=stem, ws_gain=ws_gain)


def spiking_resnet34(*, num_classes, in_channels, neuron, norm="bn", width=1.0, stem="cifar", ws_gain=WS_GAIN):
    """Spiking ResNet-34: the neuron after each residual sum."""
    return resnet("spiking", 34, num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm=norm,
                  width=width, stem=stem, ws_gain=ws_gain)


def sew_resnet18(*, num_classes, in_channels, neuron, connect="ADD", norm="bn", width=1.0, stem="cifar",
                 ws_gain=WS_GAIN):
    """SEW-ResNet-18 (Fang et al. 2021) with connect function ``connect``."""
    return resnet("sew", 18, num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm=norm,
                  width=width, stem=stem, connect=connect, ws_gain=ws_gain)


def sew_resnet34(*, num_classes, in_channels, neuron, connect="ADD", norm="bn", width=1.0, stem="cifar",
                 ws_gain=WS_GAIN):
    """SEW-ResNet-34 (Fang et al. 2021) with connect function ``connect``."""
    return resnet("sew", 34, num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm=norm,
                  width=width, stem=stem, connect=connect, ws_gain=ws_gain)


def preact_resnet18(*, num_classes, in_channels, neuron, norm="bn", width=1.0, stem="cifar", ws_gain=WS_GAIN,
                    dropout=0.0):
    """PreAct-ResNet-18 as DSR and OTTT train it on CIFAR."""
    return resnet("preact", 18, num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm=norm,
                  width=width, stem=stem, dropout=dropout, ws_gain=ws_gain)


for _builder in (spiking_resnet18, spiking_resnet34, sew_resnet18, sew_resnet34, preact_resnet18):
    register_model(_builder.__name__, _builder)
