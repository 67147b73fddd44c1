"""Pure-torch reference of the adaptive-threshold LIF (ALIF).

The membrane follows LIF (see :mod:`snn.functional.lif`); the threshold adapts::

    A[t] = rho·A[t-1] + S[t-1]           (A[0] = 0)
    S[t] = Θ(H[t] - (V_th + beta·A[t]))   (strict_threshold: fires only on H[t] > V_th + beta·A[t])

The state carried between calls is ``B[t] = A[t+1] = rho·A[t] + S[t]`` so that
single-step and multi-step runs agree.
"""
from __future__ import annotations

import torch

from ..surrogate import Surrogate
from .lif import _stack, as_state, lif_charge, lif_fire_reset, state_dtype

__all__ = ["alif_multistep"]


def alif_multistep(x_seq: torch.Tensor, v: torch.Tensor, b: torch.Tensor, decay, *, rho: float, beta: float,
                   v_threshold: float = 1.0, v_reset: float | None = 0.0, decay_input: bool = True,
                   detach_reset: bool = False, surrogate: Surrogate, strict_threshold: bool = False):
    """Returns ``(spikes, v_seq, b_seq)``; ``v_seq[-1], b_seq[-1]`` are the new state. Spikes are in the
    input dtype, the states in the state dtype (float32 for 16-bit inputs, see :mod:`snn.functional.lif`)."""
    sdt = state_dtype(x_seq.dtype)
    v, b = as_state(v, x_seq), as_state(b, x_seq)
    spikes, vs, bs = [], [], []
    for x in x_seq.to(sdt):
        h = lif_charge(v, x, decay, v_reset, decay_input)
        s, v = lif_fire_reset(h, v_threshold + beta * b, v_reset, detach_reset, surrogate, strict_threshold)
        b = rho * b + s
        spikes.append(s)
        vs.append(v)
        bs.append(b)
    return _stack(spikes, x_seq, x_seq.dtype), _stack(vs, x_seq, sdt), _stack(bs, x_seq, sdt)
