"""Training methods for the continual harness: each runs one mini-batch and leaves the weight gradients in
``.grad`` (the harness zeroes them, lets HLOP project them, adds replay/penalty gradients, and steps).

A :class:`TrainMethod` has ``step(model, x, y, heads, T) -> loss`` and ``logits(model, x, heads, T)``; ``x`` is
a batch of static images ``[B, ...]`` (direct encoding: the same input at each of the ``T`` steps), ``heads``
an int or a per-sample tensor, ``model`` a :class:`snn.continual.net.MultiHeadSNN` (``[T, B, C]`` outputs).

- ``bptt`` (here): backpropagation through time with surrogate gradients, ``L = CE((1/T) Σ_t o[t], y)``.
- ``dsr``, ``ottt``: :mod:`snn.train`'s methods, run through their ``train_batch`` with an optimiser that
  does nothing (so the step stays with the harness): DSR differentiates the spike representation (needs
  DSR neurons: ``neuron_kind='dsr'``; logits = the λ-weighted rate); OTTT_A runs the network online one step
  at a time and takes every weight gradient with the presynaptic trace (``Σ_t δ[t] a[t]ᵀ``), so HLOP's
  hooks see, and learn the subspace of, those traces.

Every method fits HLOP because each weight gradient is a sum of (error x presynaptic trace) outer products
and HLOP projects ``.grad`` after the method has run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import encoding
from ..functional import reset

__all__ = ["METHODS", "TrainMethod", "bptt_step", "mean_logits", "get_method"]

METHODS = ("bptt", "dsr", "ottt")


@dataclass(frozen=True)
class TrainMethod:
    name: str
    step: Callable[..., float]
    logits: Callable[..., torch.Tensor]
    neuron_kind: str = "lif"


def mean_logits(model, x: torch.Tensor, heads, T: int) -> torch.Tensor:
    """``(1/T) Σ_t o[t]`` for a fresh network."""
    reset(model)
    out = model(encoding.direct(x, T), heads).mean(0)
    reset(model)
    return out


def bptt_step(model, x: torch.Tensor, y: torch.Tensor, heads, T: int) -> float:
    """BPTT on ``CE(mean_t o[t], y)``; gradients accumulate into ``.grad``."""
    loss = F.cross_entropy(mean_logits(model, x, heads, T), y)
    loss.backward()
    return float(loss.detach())


class _HeadBound(nn.Module):
    """``model`` with its heads fixed: ``forward(x_seq)``, the signature :mod:`snn.train`'s methods call."""

    def __init__(self, model, heads):
        super().__init__()
        self.model, self.heads = model, heads

    def forward(self, x_seq):
        return self.model(x_seq, self.heads)


class _NoStep:
    """An optimiser stand-in: the harness steps after projecting the gradients."""

    def zero_grad(self, set_to_none: bool = True):
        pass

    def step(self):
        pass


def _from_snn_train(name: str) -> TrainMethod:
    try:
        from ..train import methods as train_methods
        from ..train.ottt import trace_decay
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise RuntimeError(f"training method {name!r} needs snn.train ({e}); use 'bptt'") from None
    m = train_methods.DSR() if name == "dsr" else train_methods.OTTT(trace_decay("lif", 2.0), "A")

    def step(model, x, y, heads, T):
        loss, _ = m.train_batch(_HeadBound(model, heads), encoding.direct(x, T), y, _NoStep(), denom=len(y))
        return loss

    def logits(model, x, heads, T):
        return m.logits(_HeadBound(model, heads), encoding.direct(x, T))

    return TrainMethod(name, step, logits, "dsr" if name == "dsr" else "lif")


def get_method(name: str) -> TrainMethod:
    """A training method by name; a clear error for unknown or unavailable ones."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; accepted: {METHODS}")
    if name == "bptt":
        return TrainMethod("bptt", bptt_step, mean_logits)
    return _from_snn_train(name)
