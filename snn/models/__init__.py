"""Spiking models: the presets (``mlp``, ``csnn``) and the zoo, built by name through one registry.

``snn.models.get(name, num_classes=..., in_channels=..., neuron='lif', surrogate='atan', T=None, **kw)``
builds any registered model (:func:`available`) with spiking layers of any registered neuron family
(:func:`neuron_names`); every model runs in step mode 'm' on ``[T, B, C, H, W]`` (``[T, B, C]`` or
``[T, B, C, L]`` for the audio models) and returns the readout ``[T, B, num_classes]`` at every step.
:func:`model_config` gives a built model's config (plain data) and :func:`build_model` rebuilds it.
"""
from __future__ import annotations

from .blocks import INIT_GAIN, NORMS, ScaledWSConv2d, conv_norm, init_synapse
from .factory import DSR_NEURONS, METHODS, NEURONS, make_neuron, neuron_class, neuron_factory, neuron_names
from .presets import csnn, mlp, mlp_body
from .registry import available, build_model, get, model_config, register_model, spiking_layers
from . import dvs, resnet, rsnn, vgg  # noqa: E402,F401  (register the zoo)

MODELS = ("mlp", "csnn")  # the presets; available() lists every registered model

__all__ = ["NEURONS", "MODELS", "NORMS", "DSR_NEURONS", "METHODS", "make_neuron", "neuron_names", "neuron_class",
           "neuron_factory", "mlp", "csnn", "mlp_body", "build_model", "model_config", "get", "available",
           "register_model", "ScaledWSConv2d", "spiking_layers", "init_synapse", "conv_norm", "INIT_GAIN"]
