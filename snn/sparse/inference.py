"""Spike-sparse inference of a trained network: :class:`SparseNet`.

``SparseNet(model, mode)`` copies a trained network (for example the ``mlp`` or ``csnn`` preset), puts it in eval
mode and replaces every ``nn.Linear`` (``snn.layers.Linear`` too) by a :class:`SparseLinear` and every ``Conv2d``
(with the eval-mode ``BatchNorm2d`` that follows it in an ``nn.Sequential`` folded in) by a
:class:`~snn.sparse.conv.SparseConv2d`, which choose, per call, between

* ``'dense'``: the trained layers themselves (``torch.nn.functional.linear``; the convolution then the BatchNorm):
  the model's own result;
* ``'sparse'``: the event-driven kernels (:func:`snn.sparse.kernels.event_linear`, which adds the weight columns
  of the non-zero inputs only; the event-driven convolution, which scatters the weights of the non-zero inputs),
  so the work follows the firing rate of the layer before;
* ``'auto'``: ``'sparse'`` where the measured input firing rate is below the machine's crossover rate
  (:func:`snn.sparse.crossover`, measured once and cached), else ``'dense'``; every change of choice is logged
  (logger ``snn.sparse``, level INFO) and :meth:`SparseNet.paths` reports the last choice, rate and crossover of
  each layer.

``mode`` is one mode for every Linear, or a dict ``{layer name: mode}`` (names as in ``model.named_modules()``;
the layers not listed run ``'auto'``). Asking for ``'sparse'`` on a layer that has no sparse path (pooling, a
neuron, a strided or weight-standardised convolution) or that cannot run it (a CUDA or 16-bit model, no compiled
kernels) is an error naming the layer, never a silent dense run. The sparse path sums in another order than the
matmul: outputs equal to rounding, spikes identical wherever no potential lands within rounding of its threshold
(bit for bit when every partial sum is exact, e.g. weights on a binary grid).

Each call runs one whole input sequence ``[T, B, ...]`` from the resting state (the neurons are reset first) and
returns a new tensor: no buffer of a returned tensor is reused by a later call.
"""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn as nn

from .. import functional, layers
from .conv import SparseConv2d
from .linear import Choice, event_refusal, spike_linear

__all__ = ["SparseNet", "SparseLinear", "PATHS"]

log = logging.getLogger("snn.sparse")

PATHS = ("dense", "sparse", "auto")
_TO_KERNEL = {"dense": "dense", "sparse": "event", "auto": "auto"}
_FROM_KERNEL = {"dense": "dense", "event": "sparse"}


class SparseLinear(nn.Module):
    """A trained ``nn.Linear`` for inference on the path ``mode`` (see :mod:`snn.sparse.inference`).

    ``last_path`` (``'dense'``/``'sparse'``), ``last_rate`` (the input's firing rate, measured under ``'auto'``)
    say what the last call ran."""

    def __init__(self, linear: nn.Linear, name: str, mode: str = "auto", crossover: float | None = None):
        super().__init__()
        if mode not in PATHS:
            raise ValueError(f"layer {name!r}: mode must be one of {PATHS}, got {mode!r}")
        self.weight, self.bias, self.name, self.mode = linear.weight, linear.bias, name, mode
        self.choice = Choice(f"layer {name!r} ({type(linear).__name__} {linear.in_features} -> "
                             f"{linear.out_features})", _TO_KERNEL[mode], "dense", crossover, event_name="sparse")

    @property
    def last_path(self) -> str | None:
        return _FROM_KERNEL.get(self.choice.last_path)

    @property
    def last_rate(self) -> float | None:
        return self.choice.last_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = self.choice.last_path
        y = spike_linear(x, self.weight, self.bias, self.choice)
        if self.mode == "auto" and self.choice.last_path != before:
            rows = x.numel() // max(1, x.shape[-1])
            log.info("%s: input firing rate %.4f, crossover %.4f at %d rows -> %s path", self.choice.who,
                     self.choice.last_rate, self.choice.rate_limit(rows, "forward"), rows, self.last_path)
        return y

    def extra_repr(self) -> str:
        return f"name={self.name!r}, mode={self.mode!r}, last_path={self.last_path!r}"


_CONVS = (nn.Conv2d, layers.Conv2d)          # exact types: a subclass may change the convolution
_NORMS = (nn.BatchNorm2d, layers.BatchNorm2d)


def _sparse_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers with a sparse path: every ``nn.Linear`` and every plain ``Conv2d``."""
    return {name: m for name, m in model.named_modules()
            if name and (isinstance(m, nn.Linear) or type(m) in _CONVS)}


def _norms_after(model: nn.Module) -> dict[str, str]:
    """conv name -> name of the eval-mode BatchNorm2d (with running statistics) right after it in a Sequential."""
    out = {}
    for prefix, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if type(conv) in _CONVS and isinstance(bn, _NORMS) and bn.track_running_stats \
                    and bn.num_features == conv.out_channels:
                out[f"{prefix}.{a}" if prefix else a] = f"{prefix}.{b}" if prefix else b
    return out


def _modes(model: nn.Module, mode) -> dict[str, str]:
    """The mode of every layer with a sparse path; a clear error for unknown names, modes, and sparse on others."""
    linears = _sparse_layers(model)
    if isinstance(mode, str):
        if mode not in PATHS:
            raise ValueError(f"SparseNet: mode must be one of {PATHS} or a dict {{layer name: mode}}, got {mode!r}")
        return {name: mode for name in linears}
    if not isinstance(mode, dict):
        raise TypeError(f"SparseNet: mode must be one of {PATHS} or a dict {{layer name: mode}}, got "
                        f"{type(mode).__name__}")
    named = dict(model.named_modules())
    out = {name: "auto" for name in linears}
    for name, m in mode.items():
        if name not in named or name == "":
            raise KeyError(f"SparseNet: no layer named {name!r} in the model; its layers: "
                           f"{[n for n in named if n]}")
        if m not in PATHS:
            raise ValueError(f"SparseNet: layer {name!r}: mode must be one of {PATHS}, got {m!r}")
        if name not in linears:
            if m == "sparse":
                raise ValueError(f"SparseNet: layer {name!r} ({type(named[name]).__name__}) has no sparse path (the "
                                 f"event-driven kernels run Linear and Conv2d layers); ask 'dense' or leave it out")
            continue
        out[name] = m
    return out


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


class SparseNet(nn.Module):
    """Inference of a trained network with a dense / sparse / auto path per Linear layer (see
    :mod:`snn.sparse.inference`). ``crossover`` fixes the rate ``'auto'`` compares with (default: the
    machine's). The trained ``model`` is copied, not changed."""

    def __init__(self, model: nn.Module, mode="auto", *, crossover: float | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"SparseNet: model must be an nn.Module, got {type(model).__name__}")
        net = copy.deepcopy(model).eval()
        modes = _modes(net, mode)
        probe = next(iter(net.parameters()), torch.empty(0))
        for name, m in modes.items():
            if m == "sparse":
                why = event_refusal(probe.detach())
                if why:
                    raise RuntimeError(f"SparseNet: layer {name!r}: mode 'sparse' asked for, but {why}")
        norms = _norms_after(net)
        for name, m in _sparse_layers(net).items():
            if isinstance(m, nn.Linear):
                _replace(net, name, SparseLinear(m, name, modes[name], crossover))
                continue
            bn = net.get_submodule(norms[name]) if name in norms else None
            _replace(net, name, SparseConv2d(m, bn, name, modes[name], crossover))
            if bn is not None:
                _replace(net, norms[name], nn.Identity())          # applied (folded) by the SparseConv2d
        self.net = net

    def layers(self) -> dict[str, nn.Module]:
        """The layers with a dense/sparse choice (:class:`SparseLinear`, :class:`~snn.sparse.conv.SparseConv2d`)."""
        return {name: m for name, m in self.net.named_modules() if isinstance(m, (SparseLinear, SparseConv2d))}

    def paths(self) -> dict[str, dict]:
        """Per layer with a sparse path: its ``mode``, and the ``path`` and input ``rate`` of the last call."""
        return {name: dict(mode=m.mode, path=m.last_path, rate=m.last_rate) for name, m in self.layers().items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            functional.reset(self.net)
            return self.net(x)
