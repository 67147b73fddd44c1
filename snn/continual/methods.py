"""Training methods for the continual harness: one function per method that runs one mini-batch and
leaves the weight gradients in ``.grad`` (the caller zeroes them, projects them, and steps).

``step(model, x, y, heads, T) -> float loss``; ``x`` is a batch of static images ``[B, ...]`` (direct
encoding: the same input at every one of the ``T`` steps), ``heads`` an int or a per-sample tensor.

- ``bptt``: backpropagation through time with surrogate gradients over the whole sequence:
  ``L = CE((1/T) Σ_t o[t], y)``, one ``backward()``.
- ``dsr`` / ``ottt``: taken from :mod:`snn.train` when it provides a step function with this signature
  (``snn.train.continual_step(name)`` or ``snn.train.methods.<name>_step``); a clear error otherwise.

Every method fits HLOP as long as each weight gradient is a sum of (error x presynaptic trace) outer
products, because HLOP projects ``.grad`` after the method has run.
"""
from __future__ import annotations

import importlib
from typing import Callable

import torch
import torch.nn.functional as F

from .. import encoding
from ..functional import reset

__all__ = ["METHODS", "bptt_step", "get_method"]

METHODS = ("bptt", "dsr", "ottt")

Step = Callable[..., float]


def bptt_step(model, x: torch.Tensor, y: torch.Tensor, heads, T: int) -> float:
    """BPTT on ``CE(mean_t logits, y)``; gradients accumulate into ``.grad``; the network is reset after."""
    reset(model)
    logits = model(encoding.direct(x, T), heads)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    reset(model)
    return float(loss.detach())


def _from_snn_train(name: str) -> Step | None:
    try:
        train = importlib.import_module("snn.train")
    except ModuleNotFoundError:
        return None
    getter = getattr(train, "continual_step", None)
    if callable(getter):
        return getter(name)
    try:
        mod = importlib.import_module("snn.train.methods")
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, f"{name}_step", None)
    return fn if callable(fn) else None


def get_method(name: str) -> Step:
    """The step function of a training method by name; a clear error for unknown or unavailable ones."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; accepted: {METHODS}")
    if name == "bptt":
        return bptt_step
    fn = _from_snn_train(name)
    if fn is None:
        raise RuntimeError(f"training method {name!r} needs snn.train to provide a step function "
                           f"(snn.train.continual_step({name!r}) or snn.train.methods.{name}_step); "
                           f"it is not available in this installation - use --train-method bptt")
    return fn
