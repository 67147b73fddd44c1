"""Stateless layers that run on sequences.

With ``step_mode='m'`` a layer takes ``[T, B, ...]``, folds time into the batch
(``[T·B, ...]``), applies the torch layer and unfolds again, so BatchNorm statistics
and convolutions see every time step. With ``'s'`` it is the plain torch layer.
Each class subclasses its torch layer (``isinstance(snn.layers.Linear(...), nn.Linear)``),
so code that inspects torch layers (export, HLOP) works unchanged.

:class:`Dropout` draws one mask per sample and keeps it across all time steps until
:func:`snn.functional.reset`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import MemoryModule, StepMode

__all__ = ["seq_apply", "TimeFolded", "SeqToANN", "Linear", "Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout"]


def seq_apply(fn, x_seq: torch.Tensor) -> torch.Tensor:
    """Apply a stateless ``fn`` to ``[T, B, ...]`` by folding T into the batch."""
    if x_seq.dim() < 2:
        raise ValueError(f"expected a sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
    t, b = x_seq.shape[:2]
    y = fn(x_seq.flatten(0, 1))
    return y.unflatten(0, (t, b))


class TimeFolded(StepMode):
    """Mixin: adds ``step_mode`` to a stateless torch layer and folds time in ``'m'`` mode."""

    def __init__(self, *args, step_mode: str = "s", **kw):
        super().__init__(*args, **kw)
        self.step_mode = step_mode

    def forward(self, x):
        if self.step_mode == "m":
            return seq_apply(super().forward, x)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step_mode={self.step_mode!r}"


class SeqToANN(TimeFolded, nn.Sequential):
    """Run any stateless modules (``nn.Sequential(*modules)``) on ``[T, B, ...]`` in ``'m'`` mode."""

    def __init__(self, *modules, step_mode: str = "m"):
        super().__init__(*modules, step_mode=step_mode)


class Linear(TimeFolded, nn.Linear):
    """``nn.Linear`` with ``step_mode``."""


class Conv1d(TimeFolded, nn.Conv1d):
    """``nn.Conv1d`` with ``step_mode``."""


class Conv2d(TimeFolded, nn.Conv2d):
    """``nn.Conv2d`` with ``step_mode``."""


class BatchNorm1d(TimeFolded, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with ``step_mode`` (statistics over batch and time)."""


class BatchNorm2d(TimeFolded, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with ``step_mode`` (statistics over batch and time)."""


class MaxPool2d(TimeFolded, nn.MaxPool2d):
    """``nn.MaxPool2d`` with ``step_mode``."""


class AvgPool2d(TimeFolded, nn.AvgPool2d):
    """``nn.AvgPool2d`` with ``step_mode``."""


class AdaptiveAvgPool2d(TimeFolded, nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` with ``step_mode``."""


class Flatten(TimeFolded, nn.Flatten):
    """``nn.Flatten`` with ``step_mode`` (flattens the dimensions after the batch)."""


class Dropout(MemoryModule):
    """Dropout with one mask per sample, shared across time steps, redrawn after reset.

    ``y = x · m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` of shape ``[B, ...]``; identity in eval mode.
    """

    def __init__(self, p: float = 0.5, step_mode: str = "s"):
        super().__init__(step_mode)
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)
        self.mask = None

    def reset(self) -> None:
        self.mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        step_shape = x.shape[1:] if self.step_mode == "m" else x.shape
        if self.mask is None or self.mask.shape != step_shape:
            keep = torch.full(step_shape, 1.0 - self.p, device=x.device, dtype=x.dtype)
            self.mask = torch.bernoulli(keep) / (1.0 - self.p)
        return x * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode!r}"
