"""Training methods for the continual harness: :mod:`snn.train`'s methods (its registry), run on a multi-head
model through the same per-batch step as :func:`snn.train.fit` (:func:`snn.train.step.train_step`).

A :class:`TrainMethod` has ``train(model, x, y, heads, T, step) -> loss`` (one batch through a
:class:`snn.train.Step`: zero the gradients, forward, backward, the step's ``before_update`` hook, the
optimizer step), ``step(model, x, y, heads, T) -> loss`` (gradients only, accumulated into ``.grad``: replay and
Fisher passes) and ``logits(model, x, heads, T)``. ``x`` is a batch of static images ``[B, ...]`` (direct
encoding: the same input at each of the ``T`` steps), ``heads`` an int or a per-sample tensor, ``model`` a
:class:`snn.continual.net.MultiHeadSNN` (``[T, B, C]`` outputs); the loss is the batch mean of the cross-entropy.

- ``bptt``: backpropagation through time with surrogate gradients, ``L = CE((1/T) Σ_t o[t], y)``.
- ``dsr``: differentiation on the spike representation (needs DSR neurons: ``neuron_kind='dsr'``; logits = the
  λ-weighted rate).
- ``ottt``: OTTT_A runs the network online one step at a time and takes every weight gradient with the
  presynaptic trace (``Σ_t δ[t] a[t]ᵀ``), so HLOP's hooks see, and learn the subspace of, those traces.

Every method fits HLOP because each weight gradient is a sum of (error x presynaptic trace) outer products
and HLOP projects ``.grad`` (in the step's ``before_update`` hook) after the method has run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import encoding
from ..train.methods import Method, make_method
from ..train.ottt import trace_decay
from ..train.step import Step, train_step

__all__ = ["METHODS", "TrainMethod", "get_method"]

METHODS = ("bptt", "dsr", "ottt")


class _HeadBound(nn.Module):
    """``model`` with its heads fixed: ``forward(x_seq)``, the signature :mod:`snn.train`'s methods call."""

    def __init__(self, model, heads):
        super().__init__()
        self.model, self.heads = model, heads

    def forward(self, x_seq):
        return self.model(x_seq, self.heads)


@dataclass(frozen=True)
class TrainMethod:
    """A :mod:`snn.train` method for multi-head models (see the module docstring)."""

    name: str
    method: Method
    neuron_kind: str = "lif"

    def train(self, model, x: torch.Tensor, y: torch.Tensor, heads, T: int, step: Step) -> float:
        loss, _ = train_step(_HeadBound(model, heads), self.method, encoding.direct(x, T), y, step)
        return loss

    def step(self, model, x: torch.Tensor, y: torch.Tensor, heads, T: int) -> float:
        loss, _ = self.method.run(_HeadBound(model, heads), encoding.direct(x, T), y, Step(denom=len(y)))
        return loss

    def logits(self, model, x: torch.Tensor, heads, T: int) -> torch.Tensor:
        return self.method.logits(_HeadBound(model, heads), encoding.direct(x, T))


def get_method(name: str) -> TrainMethod:
    """A training method by name; a clear error for unknown ones."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; accepted: {METHODS}")
    # the harness's networks are LIF (tau 2) or DSR-LIF: OTTT's trace decays by 1 - 1/tau
    options = {"lam": trace_decay("lif", 2.0), "mode": "A"} if name == "ottt" else {}
    return TrainMethod(name, make_method(name, **options), "dsr" if name == "dsr" else "lif")
