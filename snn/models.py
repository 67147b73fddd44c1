"""Model presets: ``mlp`` and ``csnn``, and :func:`build_model` to rebuild one from its config dict.

Every preset runs in ``step_mode='m'`` on ``[T, B, C, H, W]`` and returns ``[T, B, num_classes]``
(the readout currents at every step); the trainer turns them into logits (mean over time, or the
representation the training method prescribes).

- ``mlp``:  Flatten → [Linear → neuron] × len(hidden) → Linear
- ``csnn``: [Conv3x3 → norm → neuron → MaxPool2] × 2 → Flatten → Linear,
  ``norm`` being BatchNorm (``'bn'``), scaled weight standardisation of the conv (``'ws'``, OTTT's choice)
  or nothing (``'none'``).

Initialisation: a synapse that feeds a spiking layer directly (the mlp's Linear layers, the csnn's convs
with ``norm='none'``) draws ``W ~ N(0, (init_gain / sqrt(fan_in))²)`` (:func:`init_synapse`). Its current
then has ``std = init_gain·sqrt(E[x²])`` (≈ 0.97 for the digits, 0.91 for Fashion-MNIST at the default
``init_gain = 2``, whose pixels have ``E[x²]`` 0.235 and 0.206), the same order as the threshold 1, so a
share of the neurons fires from the first batch on. PyTorch's default (``Var W = 1/(3·fan_in)``) gives
``std ≈ 0.3``, while a LIF neuron (tau 2, T 4) needs a constant current of 16/15 to fire once: the
hidden layer starts silent. Normalised synapses (BatchNorm, weight standardisation) keep their own scale.

``neuron`` is ``'lif' | 'if' | 'plif'``; with ``method='dsr'`` the DSR neurons of :mod:`snn.train.dsr`
take their place (``'lif'`` → ``DSRLIF``, ``'if'`` → ``DSRIF``).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from . import layers
from . import neuron as neurons

__all__ = ["NEURONS", "MODELS", "NORMS", "make_neuron", "mlp", "csnn", "build_model", "model_config",
           "ScaledWSConv2d", "spiking_layers", "init_synapse", "INIT_GAIN"]

NEURONS = ("lif", "if", "plif")
MODELS = ("mlp", "csnn")
NORMS = ("bn", "ws", "none")
DSR_NEURONS = ("lif", "if")
INIT_GAIN = 2.0


def make_neuron(kind: str = "lif", *, method: str = "bptt", tau: float = 2.0, v_threshold: float = 1.0,
                surrogate: str = "atan", detach_reset: bool = True, backend: str = "auto",
                dsr_alpha: float = 0.5) -> nn.Module:
    """One spiking layer in step mode 'm'. ``method='dsr'`` gives DSR neurons (IF and LIF only)."""
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; accepted: {NEURONS}")
    if method == "dsr":
        if kind not in DSR_NEURONS:
            raise ValueError(f"DSR supports the neurons {DSR_NEURONS} (its representation mapping is derived for "
                             f"IF and LIF), got {kind!r}")
        from .train import dsr  # lazy: snn.train imports this module

        if kind == "if":
            return dsr.DSRIF(v_threshold=v_threshold, alpha=dsr_alpha)
        return dsr.DSRLIF(tau=tau, v_threshold=v_threshold, alpha=dsr_alpha)
    kw = dict(v_threshold=v_threshold, surrogate=surrogate, detach_reset=detach_reset, step_mode="m",
              backend=backend)
    if kind == "if":
        return neurons.IF(**kw)
    if kind == "plif":
        return neurons.PLIF(init_tau=tau, **kw)
    return neurons.LIF(tau=tau, **kw)


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


def mlp(in_shape=(1, 28, 28), hidden=(256,), num_classes: int = 10, neuron: str = "lif",
        init_gain: float = INIT_GAIN, **neuron_kw) -> nn.Sequential:
    """Flatten → [Linear → neuron]·len(hidden) → Linear; input ``[T, B, *in_shape]``, output ``[T, B, classes]``.

    The Linear layers that feed neurons are drawn by :func:`init_synapse` with ``init_gain``."""
    in_features = int(torch.tensor(in_shape).prod())
    mods: list[nn.Module] = [layers.Flatten(step_mode="m")]
    for width in hidden:
        synapse = init_synapse(layers.Linear(in_features, int(width), step_mode="m"), init_gain)
        mods += [synapse, make_neuron(neuron, **neuron_kw)]
        in_features = int(width)
    mods.append(layers.Linear(in_features, num_classes, step_mode="m"))
    return nn.Sequential(*mods)


def _norm_conv(c_in: int, c_out: int, norm: str, ws_gain: float = 1.0, init_gain: float = INIT_GAIN) -> list[nn.Module]:
    if norm == "bn":
        return [layers.Conv2d(c_in, c_out, 3, padding=1, bias=False, step_mode="m"),
                layers.BatchNorm2d(c_out, step_mode="m")]
    if norm == "ws":
        return [ScaledWSConv2d(c_in, c_out, 3, padding=1, gain_init=ws_gain, step_mode="m")]
    if norm == "none":
        return [init_synapse(layers.Conv2d(c_in, c_out, 3, padding=1, step_mode="m"), init_gain)]
    raise ValueError(f"unknown norm {norm!r}; accepted: {NORMS}")


def csnn(in_shape=(1, 28, 28), channels=(32, 64), num_classes: int = 10, neuron: str = "lif", norm: str = "bn",
         ws_gain: float = 5.0, init_gain: float = INIT_GAIN, **neuron_kw) -> nn.Sequential:
    """[Conv3x3 → norm → neuron → MaxPool2]·2 → Flatten → Linear. Works on 28x28 and 8x8 inputs.

    ``ws_gain`` is the initial gain of the weight-standardised convs (``norm='ws'``): a standardised
    filter has unit norm, too weak to make LIF neurons (threshold 1) fire from [0, 1] inputs at gain 1.
    ``init_gain`` draws the convs without a norm (``norm='none'``) by :func:`init_synapse`.
    """
    c_in, h, w = (int(s) for s in in_shape)
    if len(channels) != 2:
        raise ValueError(f"csnn has two conv blocks: channels must have 2 entries, got {channels}")
    mods: list[nn.Module] = []
    for c_out in channels:
        mods += _norm_conv(c_in, int(c_out), norm, ws_gain, init_gain)
        mods += [make_neuron(neuron, **neuron_kw), layers.MaxPool2d(2, 2, step_mode="m")]
        c_in, h, w = int(c_out), h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"csnn: input {in_shape} is too small for two 2x2 poolings")
    mods += [layers.Flatten(step_mode="m"), layers.Linear(c_in * h * w, num_classes, step_mode="m")]
    return nn.Sequential(*mods)


_PRESETS = {"mlp": mlp, "csnn": csnn}
_NEURON_KEYS = ("method", "tau", "v_threshold", "surrogate", "detach_reset", "backend", "dsr_alpha")


def model_config(model: str = "csnn", **kw) -> dict:
    """A complete, JSON-able config dict for :func:`build_model` (defaults filled in)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; accepted: {MODELS}")
    cfg = dict(model=model, in_shape=[1, 28, 28], num_classes=10, neuron="lif", method="bptt", tau=2.0,
               v_threshold=1.0, surrogate="atan", detach_reset=True, backend="auto", dsr_alpha=0.5)
    cfg["init_gain"] = INIT_GAIN
    if model == "mlp":
        cfg["hidden"] = [256]
    else:
        cfg.update(channels=[32, 64], norm="bn", ws_gain=5.0)
    unknown = set(kw) - set(cfg)
    if unknown:
        raise ValueError(f"model_config: unknown keys {sorted(unknown)} for model {model!r}; accepted: {sorted(cfg)}")
    cfg.update(kw)
    cfg["in_shape"] = [int(s) for s in cfg["in_shape"]]
    return cfg


def build_model(config: dict) -> nn.Sequential:
    """Rebuild a preset from its config dict (as stored in checkpoints). Missing keys take their defaults."""
    cfg = model_config(**copy.deepcopy(dict(config)))
    neuron_kw = {k: cfg[k] for k in _NEURON_KEYS}
    arch = {k: v for k, v in cfg.items() if k not in _NEURON_KEYS and k != "model"}
    return _PRESETS[cfg["model"]](**arch, **neuron_kw)


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: module}`` of the spiking layers (snn neurons and DSR neurons) in ``model``."""
    from .train.dsr import DSRNeuron

    return {name: m for name, m in model.named_modules()
            if isinstance(m, (neurons.BaseNeuron, DSRNeuron))}

