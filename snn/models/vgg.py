"""Spiking VGG-11 as in OTTT (Xiao et al., NeurIPS 2022), with BatchNorm or scaled weight standardisation.

Layers (``M``: 2x2 average pooling; each number a 3x3 conv of that many channels, times ``width``)::

    64 → 128 → M → 256 → 256 → M → 512 → 512 → M → 512 → 512
    conv block, norm='bn':  Conv → BatchNorm → neuron          (BPTT, DSR)
    conv block, norm='ws':  ScaledWSConv → neuron (→ ×2.74)    (OTTT: weight-only normalisation, online)
    then AdaptiveAvgPool(pool) → Flatten → Linear → readout currents [T, B, num_classes]

OTTT scales the spikes by 2.74 after every neuron of the WS variant; here that factor is the initial gain of
every WS conv after the first (``ws_scale``) and scales the readout's initial weights: the same function at
initialisation without an extra layer. OTTT's gains (``ws_gain=1`` on the first conv, ``ws_scale=2.74``) suit
its inputs (CIFAR normalised to unit variance, dense DVS count frames); on [0, 1] images and sparse event
frames (5 % of the pixels) they leave the network silent (a standardised filter has unit norm, and at firing
rates r the next current has std ≈ gain·sqrt(r)). The defaults here are 5 for the first conv (as the csnn
preset's) and 8 for the later ones: LIF layers (tau 2, threshold 1) then fire at 4-14 % through all eight
convs on the event-FMNIST stand-in at initialisation, where with later gains of 2.74 to 6 the deeper layers
fall silent. OTTT reads out after pooling to 3x3 on CIFAR and to 1x1 on CIFAR10-DVS
(``pool``); its convs start from He's initialisation and the readout from ``N(0, 0.01²)``. ``dropout`` > 0
drops spikes after each neuron with one mask per sample for all steps (OTTT uses 0.1 on CIFAR10-DVS).
Three poolings: inputs of at least 8x8.
"""
from __future__ import annotations

import torch.nn as nn

from .. import layers
from .blocks import WS_GAIN, check_norm, conv_norm, kaiming_init, readout, scaled
from .registry import register_model

__all__ = ["vgg11", "vgg11_ws", "VGG11_LAYERS", "OTTT_SPIKE_SCALE", "WS_SCALE"]

VGG11_LAYERS = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)
OTTT_SPIKE_SCALE = 2.74  # OTTT's factor on the spikes of its WS variant (ws_scale=2.74 with ws_gain=1 is OTTT's)
WS_SCALE = 8.0  # the initial gain of the WS convs after the first (module docstring)


def vgg11(*, num_classes, in_channels, neuron, norm="bn", width=1.0, pool=1, dropout=0.0, ws_gain=WS_GAIN,
          ws_scale=WS_SCALE) -> nn.Sequential:
    """Spiking VGG-11 (module docstring); ``neuron()`` returns a new spiking layer."""
    check_norm(norm)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"vgg11: dropout must lie in [0, 1), got {dropout!r}")
    mods: list[nn.Module] = []
    c_in, gain = int(in_channels), float(ws_gain)
    sizes = iter(scaled([v for v in VGG11_LAYERS if v != "M"], width))
    for v in VGG11_LAYERS:
        if v == "M":
            mods.append(layers.AvgPool2d(2, 2, step_mode="m"))
            continue
        c_out = next(sizes)
        mods += conv_norm(c_in, c_out, norm, ws_gain=gain) + [neuron()]
        if dropout:
            mods.append(layers.Dropout(dropout, step_mode="m"))
        c_in, gain = c_out, float(ws_scale)
    mods += readout(c_in, num_classes, pool)
    net = nn.Sequential(*mods)
    if norm != "none":  # convs without a norm keep init_synapse's draw
        kaiming_init(net)
    nn.init.normal_(net[-1].weight, 0.0, 0.01 * (OTTT_SPIKE_SCALE if norm == "ws" else 1.0))
    nn.init.zeros_(net[-1].bias)
    return net


def vgg11_ws(*, num_classes, in_channels, neuron, width=1.0, pool=1, dropout=0.0, ws_gain=WS_GAIN,
             ws_scale=WS_SCALE) -> nn.Sequential:
    """:func:`vgg11` with scaled weight standardisation (``norm='ws'``), the variant OTTT trains online."""
    return vgg11(num_classes=num_classes, in_channels=in_channels, neuron=neuron, norm="ws", width=width, pool=pool,
                 dropout=dropout, ws_gain=ws_gain, ws_scale=ws_scale)


register_model("vgg11", vgg11)
register_model("vgg11_ws", vgg11_ws)
