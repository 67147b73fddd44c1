r"""SoftHebb networks: Hebbian blocks (rate-based or spiking) with a linear classifier on top.

A convolutional block is ``BatchNorm2d(affine=False) → SoftHebbConv2d → Triangle(p) → MaxPool2d(4, 2, 1)``, the
reference's block; a dense block is ``Flatten → BatchNorm1d(affine=False) → SoftHebbLinear → Triangle(p)``.
Each block learns with :meth:`HebbianBlock.hebbian_update`: the normalisation takes the batch's statistics
(and keeps running ones for inference), then the layer's soft-WTA rule runs on the normalised input.

Spiking form (:class:`SpikingBlock`): the same block on ``[T, B, ...]`` spike trains, every time step through
the normalisation (running statistics), the layer, the triangle and the pooling, whose output drives spiking
neurons from the registry (IF by default, soft reset), one per pooled unit. The rule sees
rates: the block's input spike counts over ``T`` divided by ``T`` (the layer is linear, so ``W x̄`` is the
mean input current). The classifier reads the last block's spike counts over ``T`` as rates.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import encoding, neuron, neurons
from ..checks import check_int, check_range
from ..functional import reset
from .layers import SoftHebbConv2d, SoftHebbLinear, Triangle

__all__ = ["HebbianBlock", "SpikingBlock", "SoftHebbNet", "softhebb_cnn", "softhebb_mlp", "neuron_class",
           "base_block", "ENCODINGS"]

ENCODINGS = ("direct", "poisson")


class HebbianBlock(nn.Module):
    """``norm → layer → Triangle(power) → pool`` (see the module docstring)."""

    def __init__(self, layer: nn.Module, power: float = 1.0, pool: nn.Module | None = None):
        super().__init__()
        if isinstance(layer, SoftHebbConv2d):
            self.flatten = nn.Identity()
            self.norm = nn.BatchNorm2d(layer.in_channels, affine=False)
        elif isinstance(layer, SoftHebbLinear):
            self.flatten = nn.Flatten()
            self.norm = nn.BatchNorm1d(layer.in_features, affine=False)
        else:
            raise TypeError(f"HebbianBlock: layer must be a SoftHebbConv2d or SoftHebbLinear, got "
                            f"{type(layer).__name__}")
        self.layer = layer
        self.activation = Triangle(power)
        self.pool = pool if pool is not None else nn.Identity()

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.norm(self.flatten(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.preactivation(x)
        if isinstance(self.pool, nn.MaxPool2d):  # max-pool before the power: the same values, fewer powers
            return self.activation.power_of(self.pool(self.activation.rectify(u)))
        return self.pool(self.activation(u))

    @torch.no_grad()
    def hebbian_update(self, x: torch.Tensor, modulation: torch.Tensor | None = None, **overrides) -> None:
        """One plasticity step of the layer on the batch ``x``, normalised with the batch's statistics (the
        running statistics are updated); no autograd graph. ``overrides``: ``lr``/``adaptive`` for this step."""
        was = self.norm.training
        self.norm.train()
        h = self.norm(self.flatten(x))
        self.norm.train(was)
        self.layer.hebbian_update(h, modulation, **overrides)


def base_block(block: nn.Module) -> HebbianBlock:
    """The :class:`HebbianBlock` of a block, spiking or not."""
    return block.block if isinstance(block, SpikingBlock) else block


def neuron_class(name: str) -> type:
    """The ``snn.neuron`` class bound to the registered neuron spec ``name`` (e.g. 'if', 'lif')."""
    if name not in neurons.names():
        raise ValueError(f"neuron {name!r} is not a registered neuron; registered: {neurons.names()}")
    spec = neurons.get(name)
    for attr in neuron.__all__:
        cls = getattr(neuron, attr)
        if isinstance(cls, type) and neurons.is_bound(cls) and neurons.spec_of(cls) is spec:
            return cls
    raise ValueError(f"neuron {name!r} is registered but no snn.neuron class is bound to it")


class SpikingBlock(nn.Module):
    """A :class:`HebbianBlock` on spike trains ``[T, B, ...]`` whose (pooled) output, times ``gain``, drives
    spiking neurons. :meth:`calibrate` sets ``gain`` so that the ``percentile`` of the drive on data sits at the
    firing threshold (threshold balancing, as in ANN-to-SNN conversion); until then ``gain = 1``."""

    def __init__(self, block: HebbianBlock, neuron: str = "if", v_threshold: float = 1.0):
        super().__init__()
        self.block = block
        self.neuron_name = neuron
        self.neuron = neuron_class(neuron)(v_threshold=v_threshold, v_reset=None, step_mode="m")
        self.register_buffer("gain", torch.ones(()))

    def drive(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The rate block's output at every step, ``[T, B, ...]``, before the gain."""
        t, b = x_seq.shape[:2]
        return self.block(x_seq.flatten(0, 1)).unflatten(0, (t, b))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.drive(x_seq) * self.gain)

    @torch.no_grad()
    def calibrate(self, x_seq: torch.Tensor, percentile: float = 99.0, max_values: int = 1 << 20) -> float:
        """Set ``gain = V_th / q`` with ``q`` the ``percentile`` of the positive drive for the input ``x_seq``;
        returns the gain."""
        percentile = check_range(percentile, "percentile", "SpikingBlock.calibrate", low=0, high=100,
                                 low_open=True)
        d = self.drive(x_seq).flatten()
        d = d[d > 0]
        if d.numel():
            if d.numel() > max_values:
                d = d[torch.randperm(d.numel(), generator=torch.Generator().manual_seed(0))[:max_values]]
            q = float(torch.quantile(d, percentile / 100))
            self.gain.fill_(float(self.neuron.v_threshold) / q if q > 0 else 1.0)
        return float(self.gain)

    @torch.no_grad()
    def hebbian_update(self, x_seq: torch.Tensor, modulation: torch.Tensor | None = None, **overrides) -> None:
        """The rule on the input rates ``mean_t x[t]``."""
        self.block.hebbian_update(x_seq.mean(0), modulation, **overrides)

    @property
    def layer(self):
        return self.block.layer


class SoftHebbNet(nn.Module):
    """Hebbian blocks, then the classifier ``Flatten → BatchNorm1d(affine=False) → Dropout → Linear``, trained
    with labels (at inference the normalisation is a fixed affine map: the classifier is linear).

    ``T=None``: rate-based, ``forward`` takes ``[B, ...]``. With ``T``: the blocks are :class:`SpikingBlock` s, the
    input is encoded over ``T`` steps (``encoding``: 'direct' repeats it, 'poisson' draws Bernoulli spikes with
    the pixel intensities as probabilities) and the classifier reads spike rates; the neurons are reset after
    every call."""

    def __init__(self, blocks, n_features: int, n_classes: int, T: int | None = None, encoding: str = "direct",
                 dropout: float = 0.5):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.T = None if T is None else check_int(T, "T", "SoftHebbNet", 1)
        if encoding not in ENCODINGS:
            raise ValueError(f"SoftHebbNet: encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.n_features = check_int(n_features, "n_features", "SoftHebbNet", 1)
        dropout = check_range(dropout, "dropout", "SoftHebbNet", low=0, high=1, high_open=True)
        self.classifier = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(self.n_features, affine=False),
                                        nn.Dropout(dropout), nn.Linear(self.n_features, n_classes))

    @property
    def spiking(self) -> bool:
        return self.T is not None

    def hebbian_layers(self) -> list[nn.Module]:
        return [b.layer for b in self.blocks]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the first block takes it: ``x`` itself, or ``[T, B, ...]`` spike trains."""
        if not self.spiking:
            return x
        if self.encoding == "poisson":
            return encoding.poisson(x.clamp(0, 1), self.T)
        return encoding.direct(x, self.T)

    def block_input(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """What block ``index`` receives for the input batch ``x`` (the earlier blocks run as they are)."""
        h = self.encode(x)
        for block in self.blocks[:index]:
            h = block(h)
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output, flattened (spiking: its spike counts over ``T`` divided by ``T``)."""
        h = self.block_input(x, len(self.blocks))
        if self.spiking:
            h = h.mean(0)
            reset(self)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _per_block(values, name: str, n: int, who: str) -> list:
    """One value per block: a single value serves every block."""
    values = list(values)
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"{who}: {name} needs one value or one per block ({n}), got {len(values)}")
    return values


def softhebb_mlp(in_features: int = 784, hidden=(2000,), temperatures=(1 / 12,), powers=(1.0,), lrs=(0.045,),
                 anti_hebbian: bool = True, n_classes: int = 10, T: int | None = None, encoding: str = "direct",
                 neuron: str = "if", v_threshold: float = 1.0, dropout: float = 0.5, seed: int = 0) -> SoftHebbNet:
    """A dense SoftHebb network (the reference's MNIST MLP: 2000 neurons, τ = 1/12, η = 0.045): one block per entry
    of ``hidden``, then the linear classifier. Other arguments as :func:`softhebb_cnn`."""
    hidden = [check_int(h, "hidden", "softhebb_mlp", 1) for h in hidden]
    n = len(hidden)
    temperatures = _per_block(temperatures, "temperatures", n, "softhebb_mlp")
    powers, lrs = _per_block(powers, "powers", n, "softhebb_mlp"), _per_block(lrs, "lrs", n, "softhebb_mlp")
    g = torch.Generator().manual_seed(seed)
    blocks, width = [], check_int(in_features, "in_features", "softhebb_mlp", 1)
    for out, tau, p, lr in zip(hidden, temperatures, powers, lrs):
        block = HebbianBlock(SoftHebbLinear(width, out, temperature=tau, lr=lr, anti_hebbian=anti_hebbian,
                                            generator=g), p)
        blocks.append(block if T is None else SpikingBlock(block, neuron, v_threshold))
        width = out
    return SoftHebbNet(blocks, width, n_classes, T=T, encoding=encoding, dropout=dropout)


def softhebb_cnn(in_shape=(1, 28, 28), channels=(96,), kernels=(5,), temperatures=(1.0,), powers=(0.7,),
                 lrs=(0.08,), anti_hebbian: bool = True, n_classes: int = 10, T: int | None = None,
                 encoding: str = "direct", neuron: str = "if", v_threshold: float = 1.0, dropout: float = 0.5,
                 seed: int = 0) -> SoftHebbNet:
    """A convolutional SoftHebb network: one block per entry of ``channels`` (kernel, temperature, triangle power
    and learning rate per block; a single value is used for every block; ``anti_hebbian`` for all), 'same'
    reflection padding,
    MaxPool2d(4, 2, 1) after each block, then the linear classifier. ``T``: the spiking form (see
    :class:`SoftHebbNet`). ``seed`` draws the initial weights."""
    channels = [check_int(c, "channels", "softhebb_cnn", 1) for c in channels]
    n, who = len(channels), "softhebb_cnn"
    kernels, temperatures = _per_block(kernels, "kernels", n, who), _per_block(temperatures, "temperatures", n, who)
    powers, lrs = _per_block(powers, "powers", n, who), _per_block(lrs, "lrs", n, who)
    if len(in_shape) != 3:
        raise ValueError(f"softhebb_cnn: in_shape must be (channels, height, width), got {tuple(in_shape)}")
    g = torch.Generator().manual_seed(seed)
    c, h, w = (check_int(v, "in_shape", "softhebb_cnn", 1) for v in in_shape)
    blocks = []
    for out, k, tau, p, lr in zip(channels, kernels, temperatures, powers, lrs):
        k = check_int(k, "kernels", "softhebb_cnn", 1)
        if k % 2 == 0:
            raise ValueError(f"softhebb_cnn: kernels must be odd (for 'same' padding), got {k}")
        layer = SoftHebbConv2d(c, out, k, padding=k // 2, temperature=tau, lr=lr, anti_hebbian=anti_hebbian,
                               generator=g)
        block = HebbianBlock(layer, p, nn.MaxPool2d(4, 2, 1))
        blocks.append(block if T is None else SpikingBlock(block, neuron, v_threshold))
        c, h, w = out, (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
    return SoftHebbNet(blocks, c * h * w, n_classes, T=T, encoding=encoding, dropout=dropout)
