"""A spiking MLP with one or several output heads, for the continual-learning harness.

``forward(x_seq, heads)``: ``x_seq`` is ``[T, B, ...]``, ``heads`` an int (every sample uses that head) or an
int tensor ``[B]`` (a head per sample, for replay and multitask batches mixing tasks). The output is the
head's non-spiking readout at every step, ``o[t] = W_head s_L[t] + b``; BPTT takes ``logits = (1/T) Σ_t o[t]``.

The hidden layers are ``snn.layers.Linear`` (time-folded, step_mode 'm') followed by LIF neurons
(tau 2, soft reset, detached reset, no input decay; or DSR LIF neurons for the DSR method), so every weight
gradient is a sum over steps of error x presynaptic spike (or trace) outer products: what HLOP projects.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .. import layers, models

__all__ = ["MultiHeadSNN", "mlp"]


class MultiHeadSNN(nn.Module):
    """``body`` (``[T, B, ...] → [T, B, F]``) and ``heads`` (``snn.layers.Linear(F, C)`` each).

    Returns the head's output at every step (``[T, B, C]``; ``[B, C]`` in step mode 's', one step per call,
    as online training runs it); the training method reads the logits out of it (mean over time for BPTT).
    """

    def __init__(self, body: nn.Module, heads: Sequence[nn.Module]):
        super().__init__()
        self.body = body
        self.heads = nn.ModuleList(heads)

    def forward(self, x_seq: torch.Tensor, heads=0) -> torch.Tensor:
        h = self.body(x_seq)
        if isinstance(heads, int):
            return self.heads[heads](h)
        heads = torch.as_tensor(heads, device=h.device)
        out = torch.stack([head(h) for head in self.heads], -2)  # [..., B, n_heads, C]
        return out[..., torch.arange(len(heads), device=h.device), heads, :]


def mlp(in_features: int = 784, hidden: Sequence[int] = (256, 256), n_classes: int = 10, n_heads: int = 1,
        tau: float = 2.0, v_threshold: float = 1.0, bias: bool = True, neuron_kind: str = "lif") -> MultiHeadSNN:
    """``Flatten → [Linear → LIF] x len(hidden)`` (:func:`snn.models.mlp_body`, PyTorch's default init) and
    ``n_heads`` linear heads of ``n_classes`` outputs. ``neuron_kind='dsr'`` uses :class:`snn.train.DSRLIF`
    neurons (for the DSR training method)."""
    if neuron_kind not in ("lif", "dsr"):
        raise ValueError(f"mlp: neuron_kind must be 'lif' or 'dsr', got {neuron_kind!r}")
    if n_heads < 1 or n_classes < 1:
        raise ValueError(f"mlp: need n_heads >= 1 and n_classes >= 1, got {n_heads}, {n_classes}")
    if neuron_kind == "dsr":
        neuron = models.neuron_factory("lif", method="dsr", tau=tau, v_threshold=v_threshold)
    else:
        neuron = models.neuron_factory("lif", tau=tau, v_threshold=v_threshold, surrogate=None,
                                       neuron_params=dict(v_reset=None, decay_input=False))
    body = models.mlp_body(in_features, hidden, neuron, bias=bias, init_gain=None)
    heads = [layers.Linear(int(hidden[-1]), n_classes, bias=bias, step_mode="m") for _ in range(n_heads)]
    return MultiHeadSNN(body, heads)
