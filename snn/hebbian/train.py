r"""Training a :class:`~snn.hebbian.net.SoftHebbNet`: Hebbian blocks layer by layer (unsupervised, no backprop),
then a linear probe (the classifier, trained with labels on the frozen features); and, for comparison, the
same architecture with its random initial weights frozen, or trained end to end by backprop.

:func:`train_hebbian` runs under ``torch.no_grad()``: block ``l`` learns from what the (already trained, now
fixed) blocks ``0..l-1`` produce, for ``epochs`` passes over the data; nothing builds an autograd graph.
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int, check_range
from ..data import batches
from .net import SpikingBlock, base_block
from .rule import check_input

__all__ = ["progress_bar", "train_hebbian", "calibrate_norms", "extract_features", "train_probe", "accuracy",
           "train_backprop", "check_data", "fit"]


def progress_bar(total: int, desc: str, show: bool):
    """A tqdm bar (hidden unless ``show``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not show)


def check_data(x, y=None, who: str = "snn.hebbian") -> None:
    """Images ``[N, C, H, W]`` without NaN, and (if given) one integer label per image."""
    check_input(x, "x", who, (2, 4))
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{who}: y must be an integer tensor of labels")
        if len(y) != len(x):
            raise ValueError(f"{who}: x and y must be equally long (one label per sample), got {len(x)} and {len(y)}")


def _batches(x, batch_size, shuffle, generator):
    return (xb for xb, _ in batches(x, torch.zeros(len(x)), batch_size, shuffle=shuffle, generator=generator))


@torch.no_grad()
def train_hebbian(net, x: torch.Tensor, epochs: int = 1, batch_size: int = 32, seed: int = 0,
                  progress: bool = False) -> list[float]:
    """Train every Hebbian block of ``net`` in turn on the images ``x`` (no labels); a spiking block's gain is
    calibrated after it learned (:meth:`~snn.hebbian.net.SpikingBlock.calibrate`). Returns the seconds each
    block took per epoch."""
    check_data(x, who="train_hebbian")
    epochs = check_int(epochs, "epochs", "train_hebbian", 1)
    batch_size = check_int(batch_size, "batch_size", "train_hebbian", 1)
    g = torch.Generator().manual_seed(seed)
    net.eval()
    seconds = []
    steps = -(-len(x) // batch_size)
    for i, block in enumerate(net.blocks):
        start = time.perf_counter()
        with progress_bar(epochs * steps, f"hebbian block {i + 1}/{len(net.blocks)}", progress) as bar:
            for _ in range(epochs):
                for xb in _batches(x, batch_size, True, g):
                    block.hebbian_update(net.block_input(xb, i))
                    _reset_spiking(net)
                    bar.update()
        _calibrate_spiking(net, i, x)
        seconds.append((time.perf_counter() - start) / epochs)
    return seconds


def _calibrate_spiking(net, index: int, x: torch.Tensor, samples: int = 512) -> None:
    """A spiking block's gain from its drive on (the first ``samples`` of) the data."""
    block = net.blocks[index]
    if isinstance(block, SpikingBlock):
        block.calibrate(net.block_input(x[:samples], index))
        _reset_spiking(net)


def _reset_spiking(net) -> None:
    if getattr(net, "spiking", False):
        from ..functional import reset

        reset(net)


@torch.no_grad()
def calibrate_norms(net, x: torch.Tensor, batch_size: int = 256) -> None:
    """Set the running statistics of every block's normalisation (and a spiking block's gain) from the data,
    block by block, without touching any weight (what a network with random frozen weights needs before a
    probe)."""
    check_data(x, who="calibrate_norms")
    net.eval()
    for i, block in enumerate(net.blocks):
        base = base_block(block)
        momentum = base.norm.momentum
        base.norm.reset_running_stats()
        base.norm.momentum = None  # a cumulative average over the pass
        base.norm.train()
        for xb in _batches(x, batch_size, False, None):
            h = net.block_input(xb, i)
            base.norm(base.flatten(h.mean(0) if net.spiking else h))
            _reset_spiking(net)
        base.norm.momentum = momentum
        base.norm.eval()
        _calibrate_spiking(net, i, x)


@torch.no_grad()
def extract_features(net, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``net.features`` of every image (evaluation mode), ``[N, n_features]``."""
    net.eval()
    return torch.cat([net.features(xb) for xb in _batches(x, batch_size, False, None)])


def fit(model: nn.Module, params, x: torch.Tensor, y: torch.Tensor, epochs: int = 1, lr: float = 1e-3,
        batch_size: int = 64, seed: int = 0, progress: bool = False, desc: str = "backprop", frozen=()) -> float:
    """Train ``params`` of ``model`` by backprop (Adam, cross-entropy) on ``(x, y)``; the modules in ``frozen``
    stay in evaluation mode. Returns seconds per epoch."""
    check_data(x, y, desc)
    epochs = check_int(epochs, "epochs", desc, 1)
    batch_size = check_int(batch_size, "batch_size", desc, 1)
    lr = check_range(lr, "lr", desc, low=0, low_open=True)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(list(params), lr=lr)
    model.train()
    for m in frozen:
        m.eval()
    start = time.perf_counter()
    steps = -(-len(x) // batch_size)
    with progress_bar(epochs * steps, desc, progress) as bar:
        for _ in range(epochs):
            for xb, yb in batches(x, y, batch_size, shuffle=True, generator=g):
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                _reset_spiking(model)
                bar.update()
    model.eval()
    return (time.perf_counter() - start) / epochs


def train_probe(net, features: torch.Tensor, y: torch.Tensor, epochs: int = 10, lr: float = 1e-3,
                batch_size: int = 128, seed: int = 0, progress: bool = False) -> float:
    """Train ``net.classifier`` on precomputed features (:func:`extract_features`); only the classifier's
    parameters take gradients. Returns seconds per epoch."""
    return fit(net.classifier, net.classifier.parameters(), features, y, epochs, lr, batch_size, seed, progress,
               "linear probe")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             features: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` in evaluation mode; with ``features`` ``x`` holds precomputed
    features and only the classifier runs."""
    model.eval()
    f = model.classifier if features else model
    correct = 0
    for xb, yb in batches(x, y, batch_size):
        correct += int((f(xb).argmax(1) == yb).sum())
    return correct / max(len(y), 1)


def train_backprop(net, x: torch.Tensor, y: torch.Tensor, epochs: int = 1, lr: float = 1e-3,
                   batch_size: int = 64, seed: int = 0, progress: bool = False) -> float:
    """Train every weight of ``net`` (the Hebbian layers' included) end to end by backprop; returns seconds per
    epoch. The baseline SoftHebb is compared with."""
    for layer in net.hebbian_layers():
        layer.weight.requires_grad_(True)
    return fit(net, [p for p in net.parameters() if p.requires_grad], x, y, epochs, lr, batch_size, seed, progress)
