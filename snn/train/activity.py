"""Firing activity during training: spike counts per spiking layer, and the silent/saturated-layer warnings.

A layer is *silent* in an epoch when it fired at under :data:`QUIET_RATE` of its neuron-steps
(rate = spikes / neuron-steps), *saturated* when at over ``1 - QUIET_RATE`` of them; each is a
:class:`SilentLayerWarning` / :class:`SaturatedLayerWarning` naming the layer's module path and the likely fix.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .dsr import DSRNeuron
from .step import full_precision

__all__ = ["QUIET_RATE", "SilentLayerWarning", "SaturatedLayerWarning", "SpikeCounter", "activity_problems",
           "warning_class", "flat_counts", "spiking_layers"]


class SilentLayerWarning(UserWarning):
    """A spiking layer (almost) never fired during a whole training epoch."""


class SaturatedLayerWarning(UserWarning):
    """A spiking layer fired at (almost) every neuron and time step of a whole training epoch."""


# A layer is silent when it fires at under QUIET_RATE of its neuron-steps in a training epoch (one spike per
# neuron in 250 samples at T=4: no signal), saturated when at over 1 - QUIET_RATE of them.
QUIET_RATE = 1e-3
_ACTIVITY = {
    "silent": (SilentLayerWarning, "is silent in epoch {epoch}: {spikes:,} spikes in {steps:,} neuron-steps (rate "
               "{rate:.2g}), so it passes almost no signal on and its surrogate gradient is tiny; likely fix: raise "
               "the input scale or the weights feeding it, lower v_threshold, raise the learning rate (--lr), or "
               "check the encoding"),
    "saturated": (SaturatedLayerWarning, "is saturated in epoch {epoch}: {spikes:,} spikes in {steps:,} neuron-steps "
                  "(rate {rate:.4g}), so its output carries almost no information; likely fix: lower the input scale "
                  "or the weights feeding it, raise v_threshold, lower the learning rate (--lr), or check the "
                  "encoding"),
}


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: module}`` of the spiking layers (snn neurons, DSR neurons) of ``model``."""
    from ..models import spiking_layers as find

    return find(model)


def warning_class(kind: str) -> type:
    return _ACTIVITY[kind][0]


def _spike_size(mod: nn.Module):
    """The value of one spike in ``mod``'s output: V_th for DSR neurons (out = V_th·S), else 1."""
    if isinstance(mod, DSRNeuron):
        return mod.v_threshold.detach().clamp_min(mod.v_threshold_min)
    return 1.0


class SpikeCounter:
    """Forward hooks that count, per spiking layer, its spikes and its neuron-steps (output elements).

    spikes = Σ out / spike size (a sum, about 8x cheaper than counting non-zeros on CPU). The hooks add on
    the layer's device; :meth:`flush` moves the counts into ``totals`` (``{name: [spikes, neuron_steps]}``,
    Python ints), one sync per call.
    """

    def __init__(self, model: nn.Module, totals: dict | None = None):
        self.layers = spiking_layers(model)
        self.totals = {name: [0, 0] for name in self.layers}
        for name, (spikes, steps) in (totals or {}).items():
            if name in self.totals:
                self.totals[name] = [int(spikes), int(steps)]
        self._pending: dict[str, torch.Tensor] = {}
        self.handles = []

    def __enter__(self):
        for name, m in self.layers.items():
            self.handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):
        def hook(mod, args, out):
            spikes = full_precision(out.detach()).sum() / _spike_size(mod)
            self._pending[name] = spikes if name not in self._pending else self._pending[name] + spikes
            self.totals[name][1] += out.numel()
        return hook

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.flush()
        return False

    def flush(self) -> dict[str, list[int]]:
        for name, spikes in self._pending.items():
            self.totals[name][0] += round(float(spikes))
        self._pending.clear()
        return self.totals


def flat_counts(totals: dict) -> list[int]:
    """``[spikes, steps, spikes, steps, ...]`` of ``{name: [spikes, steps]}`` (for one all-reduce)."""
    return [v for counts in totals.values() for v in counts]


def activity_problems(totals: dict, layers: dict, epoch: int, quiet: float = QUIET_RATE) -> list[dict]:
    """The silent (rate = spikes / neuron-steps < ``quiet``) and saturated (rate > 1 - ``quiet``) layers among
    ``totals`` (``{name: [spikes, neuron_steps]}``), each as ``{epoch, layer, kind, message}``."""
    found = []
    for name, (spikes, steps) in totals.items():
        if steps == 0:
            continue
        rate = spikes / steps
        kind = "silent" if rate < quiet else "saturated" if rate > 1 - quiet else None
        if kind is None:
            continue
        layer = f"{name} ({type(layers[name]).__name__})"
        message = f"spiking layer {layer} " + _ACTIVITY[kind][1].format(epoch=epoch, spikes=int(spikes),
                                                                         steps=int(steps), rate=rate)
        found.append({"epoch": epoch, "layer": layer, "kind": kind, "message": message})
    return found
