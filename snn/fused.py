r"""Fused layers: ``Linear -> neuron`` and ``Conv2d -> BatchNorm2d -> neuron`` as one module each.

:class:`LinearNeuron` runs the matmul of all ``T`` steps at once (time and batch folded into rows), with the bias
inside the matmul, then the neuron's fused scan over the whole sequence (any registered neuron family, on every
backend that family has: the neuron module chooses)::

    I = x Wᵀ + b            [T·B, N], one matmul (dense) or the weight columns of the input spikes (event)
    S = neuron(I)           the family's multi-step scan

For the backward it keeps only what the backward reads: the input as bits (1 bit per spike, packed uint8) when
the input is binary, else the input itself; ``W`` only when ``∂L/∂x`` is needed; the neuron keeps what its own
kernel needs. ``∂L/∂W`` comes from the packed spikes (event-driven where the input is sparse, ``grad_mode``),
``∂L/∂x = g W``. See :mod:`snn.sparse.linear` for the paths (``mode``: ``'dense'``, the default, gives the very
matmul of ``nn.Linear``, so the spikes are those of ``snn.layers.Linear -> neuron`` bit for bit; ``'event'`` and
``'auto'`` sum in another order: equal to rounding).

:class:`ConvBNNeuron` runs ``Conv2d -> BatchNorm2d -> neuron`` on ``[T, B, C, H, W]``. In eval mode the
BatchNorm is folded into the convolution (one convolution with a bias, no separate normalisation pass)::

    α = γ / sqrt(σ² + ε),   W' = W·α (per output channel),   b' = (b - μ)·α + β

recomputed whenever a weight or a running statistic changes. The folded convolution rounds differently from
convolution-then-normalisation (equal to rounding; bit for bit when ``α`` is a power of two). In training mode,
and in eval mode when a gradient is needed, it runs the three modules as they are, so training is unchanged.

:func:`fuse` rewrites an ``nn.Sequential`` (nested ones too) with these modules, sharing the layers' parameters
and neurons: the fused network trains and infers the very same parameters.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from . import layers
from .base import StepMode
from .checks import check_int, check_real_tensor
from .neuron import BaseNeuron
from .recurrent import _make_neuron
from .sparse.linear import Choice, spike_linear

__all__ = ["LinearNeuron", "ConvBNNeuron", "fuse", "fold_batchnorm"]

_LINEARS = (nn.Linear, layers.Linear)
_CONVS = (nn.Conv2d, layers.Conv2d)
_NORMS = (nn.BatchNorm2d, layers.BatchNorm2d)


class _Fused(StepMode, nn.Module):
    """A fused block: its ``step_mode`` is its neuron's ('s': one step ``[B, ...]``, 'm': ``[T, B, ...]``)."""

    neuron: BaseNeuron

    @property
    def step_mode(self) -> str:
        return self.neuron.step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if "neuron" in self._modules:
            self.neuron.step_mode = mode

    def _check(self, x, rank: int) -> None:
        check_real_tensor(x, "input", self.who)
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{self.who}: input must be a floating-point tensor, got "
                            f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
        want = rank + (self.step_mode == "m")
        if x.dim() != want:
            shape = "[T, B, " if self.step_mode == "m" else "[B, "
            raise ValueError(f"{self.who}: step_mode={self.step_mode!r} takes {want}-D input {shape}...], got shape "
                             f"{tuple(x.shape)}")


class LinearNeuron(_Fused):
    """``Linear(in_features -> out_features) -> neuron`` in one module (equations in :mod:`snn.fused`).

    ``neuron``: a registered family name (built with ``backend`` and ``**neuron_params``), a neuron class, or a
    neuron module. ``mode`` / ``grad_mode`` (``'dense'`` | ``'event'`` | ``'auto'``) choose the forward matmul
    and the weight gradient (:mod:`snn.sparse.linear`); ``crossover`` fixes the firing rate ``'auto'`` compares
    with. Parameters: ``self.linear`` (``weight``, ``bias``), the neuron's in ``self.neuron``; ``last_path`` and
    ``last_grad_path`` say what the last call ran. :meth:`wrap` fuses existing modules (shared, not copied).
    """

    def __init__(self, in_features: int, out_features: int, neuron="lif", *, bias: bool = True,
                 step_mode: str = "m", mode: str = "dense", grad_mode: str = "auto", crossover: float | None = None,
                 backend: str = "auto", **neuron_params):
        nn.Module.__init__(self)
        who = f"LinearNeuron({in_features} -> {out_features})"
        check_int(in_features, "in_features", who, 1)
        check_int(out_features, "out_features", who, 1)
        self.linear = layers.Linear(in_features, out_features, bias=bias, step_mode=step_mode)
        self.neuron = _make_neuron(neuron, backend, neuron_params, who)
        self._setup(step_mode, mode, grad_mode, crossover)

    def _setup(self, step_mode, mode, grad_mode, crossover):
        self.step_mode = step_mode
        self.choice = Choice(self.who, mode, grad_mode, crossover)

    @property
    def who(self) -> str:
        return f"LinearNeuron({self.linear.in_features} -> {self.linear.out_features}, {type(self.neuron).__name__})"

    @classmethod
    def wrap(cls, linear: nn.Linear, neuron: BaseNeuron, *, mode: str = "dense", grad_mode: str = "auto",
             crossover: float | None = None) -> "LinearNeuron":
        """Fuse an existing ``nn.Linear`` and neuron module (the step mode is the neuron's)."""
        if not isinstance(linear, nn.Linear) or not isinstance(neuron, BaseNeuron):
            raise TypeError(f"LinearNeuron.wrap: needs an nn.Linear and a snn neuron module, got "
                            f"{type(linear).__name__} and {type(neuron).__name__}")
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.linear, self.neuron = linear, neuron
        self._setup(neuron.step_mode, mode, grad_mode, crossover)
        return self

    @property
    def last_path(self) -> str | None:
        return self.choice.last_path

    @property
    def last_grad_path(self) -> str | None:
        return self.choice.last_grad_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, 2)
        if x.shape[-1] != self.linear.in_features:
            raise ValueError(f"{self.who}: input has {x.shape[-1]} features (last dimension of shape "
                             f"{tuple(x.shape)}), expected {self.linear.in_features}")
        return self.neuron(spike_linear(x, self.linear.weight, self.linear.bias, self.choice))

    def extra_repr(self) -> str:
        return f"mode={self.choice.mode!r}, grad_mode={self.choice.grad_mode!r}"


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')``: the convolution that equals ``bn(conv(x))`` with ``bn`` in eval mode (running statistics),
    ``α = γ / sqrt(σ² + ε)``, ``W' = W·α``, ``b' = (b - μ)·α + β``."""
    var, mean = bn.running_var, bn.running_mean
    gamma = bn.weight if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(var)
    alpha = gamma / torch.sqrt(var + bn.eps)
    b = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    w = conv.weight * alpha.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    return w, (b - mean) * alpha + beta


class ConvBNNeuron(_Fused):
    """``Conv2d -> BatchNorm2d -> neuron`` in one module (equations in :mod:`snn.fused`): BatchNorm folded into
    the convolution in eval mode when no gradient is needed (inference), the three modules as they are
    otherwise (training mode, or an eval-mode forward that gradients flow through). Built from existing modules
    (shared, not copied); the step mode is the neuron's. ``bn`` must keep running statistics
    (``track_running_stats=True``) to be folded."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, neuron: BaseNeuron):
        nn.Module.__init__(self)
        if type(conv) not in _CONVS:
            raise TypeError(f"ConvBNNeuron: conv must be an nn.Conv2d or snn.layers.Conv2d (a subclass may change "
                            f"the convolution, which folding would lose), got {type(conv).__name__}")
        if not isinstance(bn, _NORMS) or not isinstance(neuron, BaseNeuron):
            raise TypeError(f"ConvBNNeuron: needs a BatchNorm2d and a snn neuron module, got {type(bn).__name__} "
                            f"and {type(neuron).__name__}")
        if not bn.track_running_stats or bn.running_var is None:
            raise ValueError("ConvBNNeuron: the BatchNorm2d keeps no running statistics (track_running_stats="
                             "False), so it normalises by batch statistics in eval mode too and cannot be folded")
        if bn.num_features != conv.out_channels:
            raise ValueError(f"ConvBNNeuron: BatchNorm2d has {bn.num_features} features, the conv "
                             f"{conv.out_channels} output channels")
        self.conv, self.bn, self.neuron = conv, bn, neuron
        self._fold_key, self._fold = None, None

    @property
    def who(self) -> str:
        return f"ConvBNNeuron({self.conv.in_channels} -> {self.conv.out_channels}, {type(self.neuron).__name__})"

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The folded ``(W', b')`` (:func:`fold_batchnorm`), recomputed only when a parameter or statistic
        changed."""
        ts = [t for t in (self.conv.weight, self.conv.bias, self.bn.weight, self.bn.bias, self.bn.running_mean,
                          self.bn.running_var) if t is not None]
        key = tuple((t.data_ptr(), t._version) for t in ts) + (self.bn.eps,)
        if key != self._fold_key:
            with torch.no_grad():
                self._fold = fold_batchnorm(self.conv, self.bn)
            self._fold_key = key
        return self._fold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, 4)
        seq = self.step_mode == "m"
        x4 = x.flatten(0, 1) if seq else x
        grads = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if self.training or grads:   # the modules' own torch forwards (time already folded)
            y = nn.BatchNorm2d.forward(self.bn, nn.Conv2d.forward(self.conv, x4))
        else:
            w, b = self.folded()
            y = self.conv._conv_forward(x4, w, b)
        return self.neuron(y.unflatten(0, x.shape[:2]) if seq else y)


def fuse(model: nn.Module, *, mode: str = "dense", grad_mode: str = "auto",
         crossover: float | None = None) -> nn.Module:
    """``model`` with every ``Linear -> neuron`` of an ``nn.Sequential`` (nested ones too) as a
    :class:`LinearNeuron` and every ``Conv2d -> BatchNorm2d -> neuron`` as a :class:`ConvBNNeuron`; the layers
    and neurons are shared, not copied (a fused block keeps the name of its first layer). Other modules (and
    any ``Sequential`` inside) are kept in place; a model that is not an ``nn.Sequential`` is returned as it
    is. ``mode``, ``grad_mode``, ``crossover``: those of the
    :class:`LinearNeuron` s."""
    if not isinstance(model, nn.Sequential):
        return model
    names, mods = list(model._modules), list(model.children())
    out, i = OrderedDict(), 0
    while i < len(mods):
        m = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        nxt2 = mods[i + 2] if i + 2 < len(mods) else None
        if type(m) in _LINEARS and isinstance(nxt, BaseNeuron):
            out[names[i]] = LinearNeuron.wrap(m, nxt, mode=mode, grad_mode=grad_mode, crossover=crossover)
            i += 2
        elif type(m) in _CONVS and isinstance(nxt, _NORMS) and nxt.track_running_stats \
                and isinstance(nxt2, BaseNeuron):
            out[names[i]] = ConvBNNeuron(m, nxt, nxt2)
            i += 3
        else:
            out[names[i]] = fuse(m, mode=mode, grad_mode=grad_mode, crossover=crossover)
            i += 1
    return nn.Sequential(out)
