"""The torch reference of every neuron: a spec's ``charge`` and ``reset`` scanned over time (the ground truth
for every kernel).

Per step, with the spec's torch functions (:mod:`snn.neurons.spec`)::

    h, θ, st = charge(X[t], st)
    S[t]     = surrogate(h - θ, strict)       (Θ forward, σ' backward)
    st       = reset(h, θ, S[t], S[t] or S[t].detach() (detach_reset), st)

Precision: the state is kept in :func:`state_dtype` of the input, float32 for float16/bfloat16 inputs
(float64 stays float64): a 16-bit input is read exactly into float32, every step is computed in float32, and
only the outputs (spikes, a recorded V) are cast back to the input dtype. Every backend and both step modes
follow this rule, so the same input gives the same spikes everywhere.
"""
from __future__ import annotations

import torch

__all__ = ["state_dtype", "as_state", "multistep"]


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the neuron state for inputs of ``dtype``: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def as_state(s, x_seq: torch.Tensor) -> torch.Tensor:
    """An initial state (tensor or number) in the state dtype of ``x_seq``, on its device (differentiable)."""
    dtype = state_dtype(x_seq.dtype)
    if isinstance(s, torch.Tensor):
        return s.to(device=x_seq.device, dtype=dtype)
    return torch.full(x_seq.shape[1:], float(s), dtype=dtype, device=x_seq.device)


def _stack(steps: list, x_seq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Stack per-step tensors into ``[T, ...]`` of ``dtype``; an empty ``[0, ...]`` tensor when T = 0."""
    return torch.stack(steps).to(dtype) if steps else x_seq.new_empty(x_seq.shape, dtype=dtype)


def multistep(spec, x_seq: torch.Tensor, states, params, flags, *, surrogate, detach_reset: bool = False,
              strict_threshold: bool = False):
    """Run ``spec`` over ``x_seq [T, ...]`` from ``states`` (one per spec state, tensors or numbers) with the
    kernel parameter block ``params`` and ``flags`` (:meth:`NeuronSpec.kernel`).

    Returns ``(spikes, state sequences)``: spikes ``[T, ...]`` in the input dtype, one ``[T, ...]`` sequence per
    state in the state dtype (the last entries are the new state)."""
    sdt = state_dtype(x_seq.dtype)
    p, f = spec.namespaces(params, flags)
    strict = spec.strict(strict_threshold)
    st = tuple(as_state(s, x_seq) for s in states)
    spikes, seqs = [], [[] for _ in st]
    for x in x_seq.to(sdt):
        h, theta, st = spec.charge(x, st, p, f)
        s = surrogate(h - theta, strict=strict)
        st = spec.reset(h, theta, s, s.detach() if detach_reset else s, st, p, f)
        spikes.append(s)
        for seq, value in zip(seqs, st):
            seq.append(value)
    return _stack(spikes, x_seq, x_seq.dtype), tuple(_stack(seq, x_seq, sdt) for seq in seqs)
