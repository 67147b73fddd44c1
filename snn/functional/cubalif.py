"""Pure-torch reference of the current-based LIF of Loihi 2 (``lava.proc.lif.process.LIF``), float mode::

    U[t] = U[t-1]·(1 - du) + X[t]
    V[t] = V[t-1]·(1 - dv) + U[t] + bias
    S[t] = Θ_strict(V[t] - V_th)        (fires on V > V_th, as Lava does)
    V[t] = 0 where S[t]

The fixed-point, bit-accurate form lives in :mod:`snn.export.loihi`. U and V are kept in float32 for
16-bit inputs (see :mod:`snn.functional.lif`).
"""
from __future__ import annotations

import torch

from ..surrogate import Surrogate
from .lif import _stack, as_state, state_dtype

__all__ = ["cubalif_multistep"]


def cubalif_multistep(x_seq: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, du: float, dv: float,
                      v_threshold: float, bias=0.0, detach_reset: bool = False, surrogate: Surrogate):
    """Returns ``(spikes, u_seq, v_seq)``; the last entries are the new state. Spikes are in the input dtype,
    the states in the state dtype."""
    sdt = state_dtype(x_seq.dtype)
    u, v = as_state(u, x_seq), as_state(v, x_seq)
    spikes, us, vs = [], [], []
    for x in x_seq.to(sdt):
        u = u * (1.0 - du) + x
        v = v * (1.0 - dv) + u + bias
        s = surrogate(v - v_threshold, strict=True)
        sr = s.detach() if detach_reset else s
        v = v * (1.0 - sr)
        spikes.append(s)
        us.append(u)
        vs.append(v)
    return _stack(spikes, x_seq, x_seq.dtype), _stack(us, x_seq, sdt), _stack(vs, x_seq, sdt)
