r"""Operation counts and an energy estimate of a spiking network: :class:`OpCounter`.

Inside ``with OpCounter(model) as ops:`` every forward pass of ``model`` on a time-major input ``[T, B, ...]``
is counted by forward hooks; :meth:`OpCounter.summary` reports:

* per spiking layer (snn neurons, DSR neurons: :func:`snn.models.spiking_layers`): its spikes, neuron-steps
  and firing rate (spikes / neuron-steps), and the synaptic operations its spikes cause;
* per synapse layer (``nn.Linear``, ``nn.Conv1d/2d/3d`` and their subclasses, :class:`snn.recurrent.Recurrent`):

  - fed by spikes: **SOPs** (synaptic operations, one accumulate each) ``= Σ_spikes fan-out(position)``, the
    fan-out being the number of (output, weight) pairs that read that input position: ``out_features`` for a
    Linear layer; for a convolution ``fan-out(i) = ∂/∂x_i Σ conv(x; W = 1)`` (the transposed convolution of
    a map of ones), which is exact at the borders and for any stride, dilation, groups and padding mode
    (``≈ C_out·k_h·k_w / stride²`` away from the borders);
  - fed by real values (the first layer under direct encoding, a layer after BatchNorm or average pooling):
    **MACs**, dense: ``Σ_positions fan-out`` (every multiply with an actual input element; taps on zero
    padding are not counted);

* the same network as an ANN: every synapse dense, once per sample (not per time step): ``ann_macs``.

Energy (joules) from per-operation energies, by default the 45 nm CMOS figures of M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014 (32-bit float: add 0.9 pJ, multiply 3.7 pJ), the
figures SNN papers use::

    E_SNN = e_ac · SOPs + e_mac · MACs          e_ac  = 0.9 pJ   (one float add per synaptic event)
    E_ANN = e_mac · ann_MACs                    e_mac = 4.6 pJ   (0.9 pJ add + 3.7 pJ multiply)

Only synaptic work is counted (no membrane updates, biases, normalisation or memory traffic), as in those papers.

Which synapse a spiking layer feeds is found from the tensors themselves, so it holds for any model (residual
blocks, branches, a spike map read by two synapses): a spiking layer's output tensor is marked as its spikes;
a leaf module (pooling, flatten, dropout in eval mode, ...) applied to marked spikes whose output still holds
one nonzero value only passes the mark on; a synapse whose input carries a mark counts SOPs for that layer.
Limits: a spike tensor made by a plain function in a ``forward`` (``x.flatten()``, ``torch.cat``, ``a + b``)
is a new tensor without the mark. The synapse that reads it still counts SOPs when its input holds only 0s and
1s (events: spikes or an event encoding), listed as source ``None`` (untraced); when it holds other values
(the sum of two spike maps in SEW-ResNet, {0, 1, 2}) it counts dense MACs. Synapses applied as functions
(``F.linear`` in a ``forward``), other than :class:`snn.recurrent.Recurrent`'s, are not seen.

Each counted pass reads its counts back to the CPU (a few synchronisations per layer): measure on a few
batches, not inside a timed training loop.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.utils.weak import WeakIdKeyDictionary

from .checks import check_range
from .models import spiking_layers
from .recurrent import Recurrent

__all__ = ["OpCounter", "count_ops", "E_MAC_45NM", "E_AC_45NM", "SYNAPSES"]

E_MAC_45NM = 4.6e-12  # J, 32-bit float multiply-accumulate, 45 nm (Horowitz, ISSCC 2014: 3.7 pJ mult + 0.9 pJ add)
E_AC_45NM = 0.9e-12   # J, 32-bit float add, 45 nm (Horowitz, ISSCC 2014)
SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _first_tensor(args):
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _single_value(t: torch.Tensor) -> bool:
    """Whether every nonzero element of ``t`` has one and the same value (a spike map: {0, 1}, or {0, V_th})."""
    nz = t[t != 0]
    return nz.numel() == 0 or bool((nz == nz.reshape(-1)[0]).all())


def _binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def conv_fan_out(layer: nn.Module, sample_shape) -> torch.Tensor:
    """The exact fan-out of each input position of a convolution for one sample ``[C, *spatial]``: the number
    of (output element, weight tap) pairs that read it, ``∂/∂x Σ conv(x; W = 1)`` (float64, on the CPU)."""
    base = next(b for b in _CONVS if isinstance(layer, b))
    x = torch.ones((1, *sample_shape), dtype=torch.float64, requires_grad=True)
    ones = torch.ones(layer.weight.shape, dtype=torch.float64)
    with torch.enable_grad():
        y = base._conv_forward(layer, x, ones, None)  # the torch layer's own padding, stride, dilation, groups
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


class _Port:
    """Counts of one synapse layer (one input port)."""

    def __init__(self, name: str, module: nn.Module, kind: str):
        self.name, self.module, self.kind = name, module, kind
        self.sops = self.macs = self.events = 0
        self.ann_macs = 0.0
        self.sources: dict = {}   # spiking layer name (None: untraced events) -> SOPs
        self.inputs: set = set()  # 'spikes' | 'events' | 'dense'


class OpCounter:
    """Forward hooks counting spikes, SOPs and MACs of ``model`` (module docstring); a context manager.

    ``e_mac`` and ``e_ac``: energy per multiply-accumulate and per accumulate, in joules (defaults: 45 nm,
    32-bit float, Horowitz 2014). The model must contain at least one spiking layer and be called on a
    time-major tensor ``[T, B, ...]`` (its first tensor argument). Counts add up over passes until :meth:`clear`.
    """

    def __init__(self, model: nn.Module, *, e_mac: float = E_MAC_45NM, e_ac: float = E_AC_45NM):
        who = "OpCounter"
        if not isinstance(model, nn.Module):
            raise TypeError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.e_mac = check_range(e_mac, "e_mac", who, 0.0, low_open=True)
        self.e_ac = check_range(e_ac, "e_ac", who, 0.0, low_open=True)
        self.model = model
        self.spiking = spiking_layers(model)
        if not self.spiking:
            raise ValueError(f"{who}: model {type(model).__name__} has no spiking layer (no snn neuron: "
                             f"snn.neuron.* or a DSR neuron), so it has no spikes or synaptic operations to count; "
                             f"accepted: a model with snn neurons inside")
        self._names = {id(m): name for name, m in self.spiking.items()}
        self._prev: dict = {}  # id(Recurrent) -> the spikes it carried into this call
        self._ports: dict[str, _Port] = {}
        self._fan_out: dict = {}
        self._handles: list = []
        self.clear()

    # -- counting --------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the counts."""
        self.counts = {name: [0, 0] for name in self.spiking}   # name -> [spikes, neuron-steps]
        self._ports.clear()
        self._order: dict = {}  # layer names in the order they first ran
        self._tags = WeakIdKeyDictionary()  # tensor -> the spiking layer whose spikes it holds
        self.samples = self.passes = 0
        self._T = None

    def __enter__(self):
        if self._handles:
            raise RuntimeError("OpCounter: this counter is counting already (its `with` block is open)")
        self._handles.append(self.model.register_forward_pre_hook(self._on_input, with_kwargs=True))
        for name, m in self.model.named_modules():
            if id(m) in self._names:
                self._handles.append(m.register_forward_hook(self._on_spikes(name)))
            elif isinstance(m, Recurrent):
                self._handles.append(m.register_forward_pre_hook(self._on_recurrent_input))
                self._handles.append(m.register_forward_hook(self._on_recurrent(name)))
            elif isinstance(m, SYNAPSES):
                self._handles.append(m.register_forward_hook(self._on_synapse(name)))
            elif not any(True for _ in m.children()):
                self._handles.append(m.register_forward_hook(self._on_leaf))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False

    def _on_input(self, module, args, kwargs):
        x = _first_tensor((*args, *kwargs.values()))
        if x is None or x.dim() < 2:
            got = "no tensor argument" if x is None else f"shape {tuple(x.shape)}"
            raise ValueError(f"OpCounter: {type(module).__name__} must be called on a time-major tensor "
                             f"[T, B, ...] to count its operations per sample, got {got}")
        self._T = int(x.shape[0])
        self.samples += int(x.shape[1])
        self.passes += 1

    def _seen(self, name: str) -> None:
        self._order.setdefault(name, None)

    def _on_spikes(self, name):
        def hook(module, args, out):
            self._seen(name)
            self.counts[name][0] += int(torch.count_nonzero(out.detach()))
            self.counts[name][1] += out.numel()
            self._tags[out] = name
        return hook

    def _on_leaf(self, module, args, out):
        x = _first_tensor(args)
        if x is None or not isinstance(out, torch.Tensor) or out in self._tags:
            return
        source = self._tags.get(x)
        if source is not None and _single_value(out.detach()):
            self._tags[out] = source

    def _port(self, name: str, module: nn.Module, kind: str) -> _Port:
        port = self._ports.get(name)
        if port is None:
            port = self._ports[name] = _Port(name, module, kind)
            self._seen(name)
        return port

    def _on_synapse(self, name):
        def hook(module, args, out):
            x = _first_tensor(args)
            if x is None:
                return
            port = self._port(name, module, type(module).__name__)
            source, x = self._tags.get(x), x.detach()
            if isinstance(module, nn.Linear):
                self._count(port, x, source, module.in_features, None, module.out_features)
            else:
                nd = module.weight.dim() - 2
                sample = tuple(x.shape[-(nd + 1):])
                self._count(port, x, source, math.prod(sample), self._conv_fan(module, sample, x.device), None)
        return hook

    def _conv_fan(self, module, sample, device) -> torch.Tensor:
        key = (id(module), sample, str(device))
        fan = self._fan_out.get(key)
        if fan is None:
            fan = conv_fan_out(module, sample)
            fan = self._fan_out[key] = (fan.to(device), int(fan.sum()))
        return fan

    def _count(self, port: _Port, x: torch.Tensor, source, sample_numel: int, fan, width) -> None:
        """Add one call of a synapse on ``x`` (samples of ``sample_numel`` elements): SOPs over its events when
        ``x`` holds spikes of ``source`` (or untraced 0/1 events), dense MACs otherwise. ``fan``: the fan-out
        map of one sample and its sum (a convolution), or ``width``: the same fan-out for every input (Linear)."""
        positions = x.numel() // max(sample_numel, 1)
        dense = positions * (width * sample_numel if fan is None else fan[1])
        port.ann_macs += dense / self._steps()
        if source is None and not _binary(x):
            port.inputs.add("dense")
            port.macs += dense
            return
        events = (x != 0).reshape(positions, -1)
        n_events = int(events.sum())
        if fan is None:
            sops = n_events * width
        else:
            sops = int(events.sum(0, dtype=torch.float64).reshape(fan[0].shape).mul(fan[0]).sum())
        port.inputs.add("spikes" if source is not None else "events")
        port.events += n_events
        port.sops += sops
        port.sources[source] = port.sources.get(source, 0) + sops

    def _steps(self) -> int:
        if self._T is None:
            raise RuntimeError("OpCounter: a layer ran outside a forward pass of the counted model; call the model "
                               "itself on [T, B, ...] (T is read from its input)")
        return self._T

    def _on_recurrent_input(self, module, args):
        self._prev[id(module)] = None if module.s is None else module.s.detach()

    def _on_recurrent(self, name):
        """A :class:`snn.recurrent.Recurrent`: its input connection (``W_in``, when it has one) and its recurrent
        connection (``W_rec``: the spikes fed back, ``S[t-1]``, each reaching ``out_features`` neurons)."""
        def hook(module, args, out):
            x, n = _first_tensor(args), module.out_features
            neuron = self._names.get(id(module.neuron))
            y = out.detach()
            if module.weight is not None:
                self._count(self._port(f"{name}.weight", module, "Recurrent.weight"), x.detach(), self._tags.get(x),
                            module.in_features, None, n)
            fed = y[:-1] if module.step_mode == "m" else y[:0]
            prev = self._prev.pop(id(module), None)
            back = fed if prev is None else torch.cat([prev.reshape(-1, n), fed.reshape(-1, n)])
            steps = y.numel() // n  # one fed-back vector per output step
            port = self._port(f"{name}.recurrent_weight", module, "Recurrent.recurrent_weight")
            port.ann_macs += steps * n * n / self._steps()
            n_events = int(torch.count_nonzero(back))
            port.inputs.add("spikes")
            port.events += n_events
            port.sops += n_events * n
            port.sources[neuron] = port.sources.get(neuron, 0) + n_events * n
            if _single_value(y):
                self._tags[out] = neuron
        return hook

    # -- report ----------------------------------------------------------------------------------------
    def summary(self, epoch: int | None = None) -> dict:
        """The counts of every pass so far (module docstring):

        ``{'sops', 'macs', 'ann_macs', 'energy_j', 'energy_ann_j', 'energy_ratio' (ANN / SNN), 'e_mac_j',
        'e_ac_j', 'spikes', 'neuron_steps', 'firing_rate', 'samples', 'passes', 'per_layer': [...]}``; each
        ``per_layer`` entry, in the order the layers first ran, is a spiking layer (``kind='spiking'``: spikes,
        neuron_steps, firing_rate, sops of the synapses it feeds, ``feeds``, ``activity`` = 'silent' /
        'saturated' / None as the trainer's silent-layer warning defines them) or a synapse
        (``kind='synapse'``: input 'spikes' / 'events' / 'dense', ``sources``, events, sops, macs, ann_macs).
        With ``epoch``, ``problems`` holds the trainer's silent/saturated-layer messages
        (:func:`snn.train.activity.activity_problems`)."""
        if self.passes == 0:
            raise RuntimeError("OpCounter.summary: no forward pass was counted; run the model on a [T, B, ...] "
                               "input inside `with OpCounter(model) as ops:` first")
        from .train.activity import activity_problems

        ep = 0 if epoch is None else epoch
        activity = {name: next((p["kind"] for p in activity_problems({name: c}, self.spiking, ep)), None)
                    for name, c in self.counts.items()}
        feeds: dict = {name: {} for name in self.spiking}
        for port in self._ports.values():
            for source, sops in port.sources.items():
                if source is not None:
                    feeds[source][port.name] = feeds[source].get(port.name, 0) + sops
        per_layer = []
        for name in self._order:
            if name in self.counts:
                spikes, steps = self.counts[name]
                per_layer.append(dict(name=name, kind="spiking", type=type(self.spiking[name]).__name__,
                                      spikes=spikes, neuron_steps=steps, firing_rate=spikes / steps if steps else 0.0,
                                      sops=sum(feeds[name].values()), feeds=sorted(feeds[name]),
                                      activity=activity.get(name)))
            else:
                p = self._ports[name]
                per_layer.append(dict(name=name, kind="synapse", type=p.kind,
                                      input="/".join(sorted(p.inputs)), sources=list(p.sources), events=p.events,
                                      sops=p.sops, macs=p.macs, ann_macs=round(p.ann_macs)))
        sops = sum(p.sops for p in self._ports.values())
        macs = sum(p.macs for p in self._ports.values())
        ann = round(sum(p.ann_macs for p in self._ports.values()))
        energy = self.e_ac * sops + self.e_mac * macs
        spikes = sum(c[0] for c in self.counts.values())
        steps = sum(c[1] for c in self.counts.values())
        out = dict(sops=sops, macs=macs, ann_macs=ann, energy_j=energy, energy_ann_j=self.e_mac * ann,
                   energy_ratio=self.e_mac * ann / energy if energy > 0 else math.inf, e_mac_j=self.e_mac,
                   e_ac_j=self.e_ac, spikes=spikes, neuron_steps=steps, firing_rate=spikes / steps if steps else 0.0,
                   samples=self.samples, passes=self.passes, per_layer=per_layer)
        if epoch is not None:
            out["problems"] = activity_problems(self.counts, self.spiking, epoch)
        return out


@torch.no_grad()
def count_ops(model: nn.Module, x: torch.Tensor, **energies) -> dict:
    """Reset ``model`` (:func:`snn.functional.reset`), run it once on ``x [T, B, ...]`` without gradients
    under an :class:`OpCounter` (``energies``: its ``e_mac``, ``e_ac``), reset it again and return the
    summary."""
    from .functional import reset

    counter = OpCounter(model, **energies)
    reset(model)
    with counter:
        model(x)
    reset(model)
    return counter.summary()
