"""CUBALIF: the current-based LIF of Loihi 2 (``lava.proc.lif.process.LIF``), float mode::

    U[t] = U[t-1]·(1 - du) + X[t]
    H[t] = V[t-1]·(1 - dv) + U[t] + bias        (the membrane before the reset)
    S[t] = Θ_strict(H[t] - V_th)                 (fires on H > V_th, as Lava does: always strict)
    V[t] = H[t]·(1 - S[t])

Kernel parameters ``(cu, cv, v_threshold, bias)`` with ``cu = 1 - du`` and ``cv = 1 - dv`` formed in double
precision, as the reference's python floats are. The fixed-point, bit-accurate form lives in
:mod:`snn.export.loihi`. C++: ``csrc/neurons/cubalif.h``; Triton: :mod:`snn.kernels.cubalif`.
"""
from __future__ import annotations

from .spec import CppStep, NeuronSpec, Param, State

__all__ = ["CUBALIF"]


def _charge(x, st, p, f):
    u = st[0] * p.cu + x
    h = st[1] * p.cv + u + p.bias
    return h, p.v_threshold, (u, st[1])


def _reset(h, theta, s, sr, st, p, f):
    return st[0], h * (1.0 - sr)


def _to_kernel(v):
    return dict(cu=1.0 - v["du"], cv=1.0 - v["dv"], v_threshold=v["v_threshold"], bias=v["bias"])


CUBALIF = NeuronSpec(
    name="cubalif", states=(State("u", doc="synaptic current"), State("v")),
    params=(Param("du", 0.5, low=0.0, high=1.0, doc="current decay"),
            Param("dv", 0.5, low=0.0, high=1.0, doc="voltage decay"),
            Param("v_threshold", 1.0, low=0.0, low_open=True, doc="V_th (the reset potential is 0)"),
            Param("bias", 0.0, doc="constant input")),
    kernel_params=("cu", "cv", "v_threshold", "bias"), to_kernel=_to_kernel, strict_threshold=True,
    charge=_charge, reset=_reset, cpp=CppStep("CUBALIFStep", header="neurons/cubalif.h"),
    triton="snn.kernels.cubalif", doc="current-based LIF of Loihi 2 (float mode)",
    exports={"nir": {"to": "snn.export.neurons:cubalif_to_nir", "node": "CubaLIF",
                     "from": "snn.export.neurons:cubalif_from_nir"},
             "loihi": "snn.export.neurons:cubalif_to_cuba"})
