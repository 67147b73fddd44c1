"""The SPIDE models in snn's model registry: ``snn.models.get('spide-fc' | 'spide-mlp' | 'spide-conv', ...)``.

The registry's neuron (family, ``v_threshold``, ``tau``, surrogate, ``detach_reset``, backend) sets the
forward neuron: ``'if'`` (the paper's main setting) or ``'lif'`` with leak ``λ = 1 - 1/tau`` (tau 20, λ = 0.95,
unless given: the registry's tau 2 would leak half the membrane per step); the reset is always SPIDE's
modified reset (:mod:`snn.spide.neuron`). Other families are refused.
"""
from __future__ import annotations

from .. import neuron as snn_neuron
from ..models import register_model
from ..models.presets import _in_shape
from . import models

__all__ = ["MODEL_NAMES"]

MODEL_NAMES = ("spide-fc", "spide-mlp", "spide-conv")
LIF_TAU = 20.0  # leak 0.95 when the LIF's tau is not given
TRAINING_METHODS = ("spide", "ide")  # trained by snn.spide.method; their neurons are the plain IF/LIF


def _forward_neuron(neuron) -> dict:
    """The forward neuron's arguments from a neuron built by the registry's factory."""
    cell = neuron()
    if type(cell) is snn_neuron.IF:
        leak = 1.0
    elif type(cell) is snn_neuron.LIF:
        leak = 1.0 - 1.0 / cell.tau
    else:
        raise ValueError(f"SPIDE models run IF or LIF neurons (with SPIDE's modified reset), got "
                         f"{type(cell).__name__}; use neuron='if' or 'lif'")
    return dict(v_threshold=cell.v_threshold, leak=leak, surrogate=cell.surrogate, detach_reset=cell.detach_reset,
                backend=cell.backend)


def _prepare(cfg: dict, given: set) -> dict:
    cfg = _in_shape(cfg, given)
    if cfg["method"] in TRAINING_METHODS:  # the config's method picks the neuron variant: plain IF/LIF here
        cfg["method"] = "bptt"
    if cfg["neuron"] == "lif" and "tau" not in given:
        cfg["tau"] = LIF_TAU
    return cfg


def _fc(*, num_classes, in_channels, neuron, in_shape=(1, 28, 28), hidden=256, T_back=100, v_threshold_back=0.5,
        u_rest=None, init_gain=2.0, feedback_gain=0.5, feedback_norm=1.0):
    return models.spide_fc(in_shape, hidden, num_classes, u_rest=u_rest, v_threshold_back=v_threshold_back,
                           T_back=T_back, init_gain=init_gain, feedback_gain=feedback_gain,
                           feedback_norm=feedback_norm, **_forward_neuron(neuron))


def _mlp(*, num_classes, in_channels, neuron, in_shape=(1, 28, 28), hidden=(256, 128), T_back=100,
         v_threshold_back=0.5, u_rest=None, init_gain=2.0, feedback_gain=0.5, feedback_norm=1.0):
    return models.spide_mlp(in_shape, hidden, num_classes, u_rest=u_rest, v_threshold_back=v_threshold_back,
                            T_back=T_back, init_gain=init_gain, feedback_gain=feedback_gain,
                            feedback_norm=feedback_norm, **_forward_neuron(neuron))


def _conv(*, num_classes, in_channels, neuron, in_shape=(1, 28, 28), channels=(16, 32), T_back=100,
          v_threshold_back=0.5, u_rest=None, init_gain=2.0, feedback_gain=0.5, feedback_norm=2.0):
    return models.spide_conv(in_shape, channels, num_classes, u_rest=u_rest, v_threshold_back=v_threshold_back,
                             T_back=T_back, init_gain=init_gain, feedback_gain=feedback_gain,
                             feedback_norm=feedback_norm, **_forward_neuron(neuron))


for _name, _builder in zip(MODEL_NAMES, (_fc, _mlp, _conv)):
    register_model(_name, _builder, prepare=_prepare, replace=True)
