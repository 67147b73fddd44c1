"""The training methods behind ``--method``: one small class each, sharing one interface.

``train_batch(model, x_seq, y, optimizer, denom, sync)`` runs forward/backward/update on one batch
(``x_seq [T, B, ...]``) and returns ``(loss, logits)``; the loss is a sum over the batch divided by
``denom`` (the global batch size, so that summing gradients over processes gives the global mean).
``sync()`` all-reduces the gradients before each optimizer step (a no-op in one process).
``logits(model, x_seq)`` is the prediction used for accuracy.

- BPTT: surrogate gradients through the unrolled time steps; logits = mean over t of the readout.
- DSR:  the DSR neurons differentiate the spike representation; logits = the (λ-weighted) rate of the
  readout, the representation the last spiking layer encodes (:mod:`snn.train.dsr`).
- OTTT: online, one step at a time with presynaptic traces (:mod:`snn.train.ottt`), OTTT_A or OTTT_O.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..functional import reset
from . import dsr, ottt

__all__ = ["Method", "BPTT", "DSR", "OTTT", "make_method"]


class Method:
    name = "method"

    def logits(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        reset(model)
        out = model(x_seq)
        reset(model)
        return self.readout(model, out)

    def readout(self, model, out_seq):
        return out_seq.mean(0)

    def train_batch(self, model, x_seq, y, optimizer, denom: float, sync=lambda: None):
        optimizer.zero_grad(set_to_none=True)
        logits = self.logits(model, x_seq)
        loss = F.cross_entropy(logits, y, reduction="sum") / denom
        loss.backward()
        sync()
        optimizer.step()
        return float(loss.detach()), logits.detach()


class BPTT(Method):
    """Backpropagation through time with surrogate gradients."""

    name = "bptt"


class DSR(Method):
    """Differentiation on spike representation: same loop as BPTT, DSR neurons, representation readout."""

    name = "dsr"

    def readout(self, model, out_seq):
        return dsr.weighted_rate(out_seq, dsr.readout_decay(model))


class OTTT(Method):
    """Online training through time: ``mode='A'`` accumulates over the T steps, ``'O'`` updates every step."""

    name = "ottt"

    def __init__(self, lam: float, mode: str = "A"):
        if mode not in ("A", "O"):
            raise ValueError(f"OTTT mode must be 'A' or 'O', got {mode!r}")
        self.lam, self.mode = float(lam), mode

    def train_batch(self, model, x_seq, y, optimizer, denom: float, sync=lambda: None):
        optimizer.zero_grad(set_to_none=True)

        def every_step(t):
            if self.mode == "O" or t == x_seq.shape[0] - 1:
                sync()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        loss, logits = ottt.run_online(model, x_seq, y, self.lam, denom, on_step=every_step)
        return loss, logits


def make_method(method: str, *, neuron: str = "lif", tau: float = 2.0, ottt_mode: str = "A",
                model: nn.Module | None = None) -> Method:
    """The :class:`Method` for ``--method`` (OTTT checks ``model`` has no BatchNorm)."""
    if method == "bptt":
        return BPTT()
    if method == "dsr":
        return DSR()
    if method == "ottt":
        if model is not None:
            ottt.check_online(model)
        return OTTT(ottt.trace_decay(neuron, tau), ottt_mode)
    raise ValueError(f"unknown method {method!r}; accepted: bptt, dsr, ottt")
