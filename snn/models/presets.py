"""The presets ``mlp`` and ``csnn``, and the spiking MLP body they and the continual-learning heads share.

Every preset runs in ``step_mode='m'`` on ``[T, B, C, H, W]`` and returns ``[T, B, num_classes]``
(the readout currents at every step); the trainer turns them into logits (mean over time, or the
representation the training method prescribes).

- ``mlp``:  Flatten → [Linear → neuron] × len(hidden) → Linear
- ``csnn``: [Conv3x3 → norm → neuron → MaxPool2] × 2 → Flatten → Linear,
  ``norm`` being BatchNorm (``'bn'``), scaled weight standardisation of the conv (``'ws'``, OTTT's choice)
  or nothing (``'none'``); see :mod:`snn.models.blocks` for the initialisation.

``neuron`` is a family name (any of :func:`snn.models.neuron_names`, built by :func:`snn.models.make_neuron`
with ``**neuron_kw``) or a function of no arguments returning a new spiking layer.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch.nn as nn

from .. import layers
from .blocks import INIT_GAIN, conv_norm, init_synapse
from .factory import neuron_factory
from .registry import register_model

__all__ = ["mlp", "csnn", "mlp_body", "as_factory"]


def as_factory(neuron, neuron_kw: dict) -> Callable[[], nn.Module]:
    """``neuron`` as a function of no arguments that returns a new spiking layer."""
    if callable(neuron) and not isinstance(neuron, str):
        if neuron_kw:
            raise TypeError(f"neuron arguments {sorted(neuron_kw)} cannot be applied to a neuron factory; "
                            f"put them in the factory")
        return neuron
    return neuron_factory(neuron, **neuron_kw)


def mlp_body(in_features: int, hidden: Sequence[int], neuron: Callable[[], nn.Module], *, bias: bool = True,
             init_gain: float | None = INIT_GAIN) -> nn.Sequential:
    """Flatten → [Linear → neuron()]·len(hidden): ``[T, B, ...] → [T, B, hidden[-1]]``.

    The Linear layers are drawn by :func:`init_synapse` with ``init_gain`` (``None``: PyTorch's default)."""
    if not hidden or any(isinstance(h, bool) or int(h) != h or h < 1 for h in hidden):
        raise ValueError(f"mlp: hidden sizes must be positive integers, got {list(hidden)}")
    mods: list[nn.Module] = [layers.Flatten(step_mode="m")]
    for width in hidden:
        synapse = layers.Linear(int(in_features), int(width), bias=bias, step_mode="m")
        if init_gain is not None:
            init_synapse(synapse, init_gain)
        mods += [synapse, neuron()]
        in_features = int(width)
    return nn.Sequential(*mods)


def mlp(in_shape=(1, 28, 28), hidden=(256,), num_classes: int = 10, neuron="lif",
        init_gain: float = INIT_GAIN, **neuron_kw) -> nn.Sequential:
    """Flatten → [Linear → neuron]·len(hidden) → Linear; input ``[T, B, *in_shape]``, output ``[T, B, classes]``.

    The Linear layers that feed neurons are drawn by :func:`init_synapse` with ``init_gain``."""
    body = mlp_body(math.prod(int(s) for s in in_shape), hidden, as_factory(neuron, neuron_kw),
                    init_gain=init_gain)
    return nn.Sequential(*body, layers.Linear(int(hidden[-1]), num_classes, step_mode="m"))


def csnn(in_shape=(1, 28, 28), channels=(32, 64), num_classes: int = 10, neuron="lif", norm: str = "bn",
         ws_gain: float = 5.0, init_gain: float = INIT_GAIN, **neuron_kw) -> nn.Sequential:
    """[Conv3x3 → norm → neuron → MaxPool2]·2 → Flatten → Linear. Works on 28x28 and 8x8 inputs.

    ``ws_gain`` is the initial gain of the weight-standardised convs (``norm='ws'``): a standardised
    filter has unit norm, too weak to make LIF neurons (threshold 1) fire from [0, 1] inputs at gain 1.
    ``init_gain`` draws the convs without a norm (``norm='none'``) by :func:`init_synapse`.
    """
    c_in, h, w = (int(s) for s in in_shape)
    if len(channels) != 2:
        raise ValueError(f"csnn has two conv blocks: channels must have 2 entries, got {channels}")
    if h // 4 < 1 or w // 4 < 1:
        raise ValueError(f"csnn: input {tuple(in_shape)} is too small for two 2x2 poolings")
    make = as_factory(neuron, neuron_kw)
    mods: list[nn.Module] = []
    for c_out in channels:
        mods += conv_norm(c_in, int(c_out), norm, ws_gain=ws_gain, init_gain=init_gain)
        mods += [make(), layers.MaxPool2d(2, 2, step_mode="m")]
        c_in, h, w = int(c_out), h // 2, w // 2
    mods += [layers.Flatten(step_mode="m"), layers.Linear(c_in * h * w, num_classes, step_mode="m")]
    return nn.Sequential(*mods)


def _in_shape(cfg: dict, given: set) -> dict:
    """A preset's ``in_shape`` ``[C, H, W]`` and ``in_channels`` made consistent: ``in_shape`` may be given as
    ``[H, W]`` (C from ``in_channels``) or ``[C, H, W]`` (``in_channels``, when not given, is its C)."""
    shape = cfg["in_shape"]
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) not in (2, 3) \
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"model {cfg['model']!r}: in_shape must be [H, W] or [C, H, W] of positive ints, "
                         f"got {shape!r}")
    shape = list(shape)
    if len(shape) == 2:
        shape = [cfg["in_channels"], *shape]
    elif "in_shape" not in given:
        shape[0] = cfg["in_channels"]
    elif "in_channels" not in given:
        cfg["in_channels"] = shape[0]
    elif shape[0] != cfg["in_channels"]:
        raise ValueError(f"model {cfg['model']!r}: in_shape {shape} has {shape[0]} channels but in_channels is "
                         f"{cfg['in_channels']!r}")
    cfg["in_shape"] = shape
    return cfg


def _mlp_preset(*, num_classes, in_channels, neuron, in_shape=(1, 28, 28), hidden=(256,), init_gain=INIT_GAIN):
    return mlp(in_shape, hidden, num_classes, neuron, init_gain)


def _csnn_preset(*, num_classes, in_channels, neuron, in_shape=(1, 28, 28), channels=(32, 64), norm="bn",
                 ws_gain=5.0, init_gain=INIT_GAIN):
    return csnn(in_shape, channels, num_classes, neuron, norm, ws_gain, init_gain)


register_model("mlp", _mlp_preset, prepare=_in_shape)
register_model("csnn", _csnn_preset, prepare=_in_shape)
