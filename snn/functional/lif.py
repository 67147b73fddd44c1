"""Pure-torch reference of the IF / LIF / PLIF dynamics (the ground truth for every kernel).

One step, with ``d = 1/tau`` (``d = 0`` and ``decay_input=False`` give IF)::

    decay_input=True :  H[t] = V[t-1] + d·(X[t] - (V[t-1] - V_reset))
    decay_input=False:  H[t] = V[t-1] - d·(V[t-1] - V_reset) + X[t]
    S[t] = Θ(H[t] - V_th)        (strict_threshold: Θ_strict, fires only on H[t] > V_th)
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_reset·S[t]
    soft reset (v_reset=None):  V[t] = H[t] - V_th·S[t]   (V_reset read as 0 in the charge)

``detach_reset`` detaches the S[t] used in the reset. ``d`` may be a tensor that
requires grad (PLIF: ``d = sigmoid(w)``).

Precision: the state (V here; A, U in the other families) is kept in :func:`state_dtype` of the
input, float32 for float16/bfloat16 inputs (float64 stays float64): a 16-bit input is read exactly
into float32, every step is computed in float32, and only the outputs (spikes, a recorded V) are
cast back to the input dtype. Every backend and both step modes follow this rule, so the same input
gives the same spikes everywhere.
"""
from __future__ import annotations

import torch

from ..surrogate import Surrogate

__all__ = ["state_dtype", "as_state", "lif_charge", "lif_fire_reset", "lif_multistep"]


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


def lif_charge(v, x, decay, v_reset, decay_input: bool):
    """H = V + d·(X - (V - V_r)) (decay_input) or V - d·(V - V_r) + X."""
    vr = 0.0 if v_reset is None else v_reset
    if decay_input:
        return v + (x - (v - vr)) * decay
    return v - (v - vr) * decay + x


def lif_fire_reset(h, v_threshold, v_reset, detach_reset: bool, surrogate: Surrogate, strict: bool = False):
    """S = Θ(H - V_th) (``strict``: H > V_th); V = hard or soft reset of H. Returns (S, V).

    ``v_threshold`` may be a tensor (ALIF's adaptive threshold V_th + beta·A)."""
    s = surrogate(h - v_threshold, strict=strict)
    sr = s.detach() if detach_reset else s
    if v_reset is None:
        v = h - v_threshold * sr
    else:
        v = h * (1.0 - sr) + v_reset * sr
    return s, v


def lif_multistep(x_seq: torch.Tensor, v: torch.Tensor, decay, *, v_threshold: float = 1.0,
                  v_reset: float | None = 0.0, decay_input: bool = True, detach_reset: bool = False,
                  surrogate: Surrogate, strict_threshold: bool = False):
    """Run T steps. Returns ``(spikes [T, ...], v_seq [T, ...])``: spikes in the input dtype, ``v_seq`` in the
    state dtype (float32 for 16-bit inputs); ``v_seq[-1]`` is the new state."""
    sdt = state_dtype(x_seq.dtype)
    v = as_state(v, x_seq)
    spikes, vs = [], []
    for x in x_seq.to(sdt):
        h = lif_charge(v, x, decay, v_reset, decay_input)
        s, v = lif_fire_reset(h, v_threshold, v_reset, detach_reset, surrogate, strict_threshold)
        spikes.append(s)
        vs.append(v)
    return _stack(spikes, x_seq, x_seq.dtype), _stack(vs, x_seq, sdt)
