r"""The network NHL adapts: Hebbian early layers, a neuro-modulator, and a top trained by backprop.

::

    x → [HebbianBlock: BN(affine=False) → SoftHebbConv2d → Triangle → MaxPool] → NeuroModulator → top
    top = Conv2d → BatchNorm2d → ReLU → MaxPool2d(2) → Flatten → Linear

On the source domain the early blocks learn with the SoftHebb rule (unsupervised), the neuro-modulator is the
identity (``γ = 1, β = 0``) and the top learns with labels. At test time (:mod:`.tta`) the early layers keep
learning with the soft Hebbian rule and the neuro-modulator ``z_c = γ_c h_c + β_c`` (one gain and bias per
channel) is tuned by the feedback of the top layers (the gradient of the prediction entropy).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..checks import check_int
from .layers import SoftHebbConv2d
from .net import HebbianBlock
from .train import fit, train_hebbian

__all__ = ["NeuroModulator", "ModulatedNet", "modulated_cnn", "train_source"]


class NeuroModulator(nn.Module):
    """``z = γ ⊙ h + β`` per channel (dimension 1); the identity at initialisation (exactly: ``1·h + 0 = h``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = check_int(channels, "channels", "NeuroModulator", 1)
        self.gain = nn.Parameter(torch.ones(self.channels))
        self.bias = nn.Parameter(torch.zeros(self.channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() < 2 or h.shape[1] != self.channels:
            raise ValueError(f"NeuroModulator: input must have {self.channels} channels in dimension 1, got shape "
                             f"{tuple(h.shape)}")
        shape = (1, self.channels) + (1,) * (h.dim() - 2)
        return h * self.gain.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class ModulatedNet(nn.Module):
    """``blocks`` (Hebbian, early) → ``modulator`` → ``top`` (see the module docstring). ``blocks`` and
    ``block_input`` are what :func:`snn.hebbian.train.train_hebbian` needs."""

    spiking = False

    def __init__(self, blocks, modulator: NeuroModulator, top: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.modulator = modulator
        self.top = top

    def hebbian_layers(self) -> list[nn.Module]:
        return [b.layer for b in self.blocks]

    def block_input(self, x: torch.Tensor, index: int) -> torch.Tensor:
        for block in self.blocks[:index]:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.modulator(self.block_input(x, len(self.blocks))))


def modulated_cnn(in_shape=(1, 28, 28), hebbian_channels: int = 32, kernel: int = 5, temperature: float = 1.0,
                  power: float = 0.7, top_channels: int = 64, n_classes: int = 10, seed: int = 0) -> ModulatedNet:
    """One Hebbian convolutional block (``hebbian_channels`` kernels), the neuro-modulator, and a top of one
    convolution (``top_channels``, 3x3) with batch normalisation and the linear classifier."""
    c, h, w = (check_int(v, "in_shape", "modulated_cnn", 1) for v in in_shape)
    g = torch.Generator().manual_seed(seed)
    k = check_int(kernel, "kernel", "modulated_cnn", 1)
    layer = SoftHebbConv2d(c, hebbian_channels, k, padding=k // 2, temperature=temperature, generator=g)
    block = HebbianBlock(layer, power, nn.MaxPool2d(4, 2, 1))
    h, w = (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
    torch.manual_seed(seed)  # the top's initial weights
    top = nn.Sequential(nn.Conv2d(hebbian_channels, top_channels, 3, padding=1), nn.BatchNorm2d(top_channels),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(top_channels * (h // 2) * (w // 2), n_classes))
    return ModulatedNet([block], NeuroModulator(hebbian_channels), top)


def train_source(model: ModulatedNet, x: torch.Tensor, y: torch.Tensor, hebbian_epochs: int = 1,
                 epochs: int = 2, lr: float = 1e-3, batch_size: int = 64, hebbian_batch_size: int = 32,
                 seed: int = 0, progress: bool = False) -> dict:
    """Train on the source domain: the Hebbian blocks unsupervised, then the top by backprop on their fixed
    output (the blocks and the neuro-modulator frozen). Returns seconds per epoch of each phase."""
    hebbian = train_hebbian(model, x, hebbian_epochs, hebbian_batch_size, seed, progress)
    top = fit(model, model.top.parameters(), x, y, epochs, lr, batch_size, seed, progress, "top (backprop)",
              frozen=(model.blocks, model.modulator))
    return {"hebbian_s_per_epoch": hebbian, "top_s_per_epoch": top}
