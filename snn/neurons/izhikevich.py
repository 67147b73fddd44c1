"""Izhikevich: a quadratic membrane with an adaptation current W (SpikingJelly's ``IzhikevichNode``)::

    H[t] = B(V[t-1] + (X[t] + a0·(V[t-1] - V_rest)·(V[t-1] - V_c) - W[t-1]) / tau)
    S[t] = Θ(H[t] - V_th)                  (strict_threshold: H[t] > V_th)
    W[t] = B(W[t-1] + (a·(H[t] - V_rest) - W[t-1]) / tau_w + b·S[t])
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_reset·S[t]        soft (v_reset=None):  V[t] = H[t] - V_th·S[t]

``V[0] = V_reset`` (0 for soft), ``W[0] = w_rest``. ``W`` reads the membrane before the reset and the spike
``S[t]`` with its surrogate gradient (``detach_reset`` detaches only the reset of V), as SpikingJelly's does.
``B`` bounds V and W to ``[-2^100, 2^100]`` as in :mod:`.qif`.

Valid parameters: ``tau >= 1``, ``a0 > 0``, ``V_rest < V_c``, ``tau_w >= 1`` (SpikingJelly accepts any
``tau_w``; below 1 the forward-Euler step of W overshoots), any finite ``a``, ``b``, ``w_rest``; hard reset
``V_reset < V_th``, soft reset ``V_th > 0``. Kernel parameters
``(tau, a0, v_rest, v_c, v_threshold, v_reset, a, b, tau_w, w_rest)``, flag ``hard_reset``.
C++: ``csrc/neurons/izhikevich.h``; Triton: :mod:`snn.kernels.izhikevich`.
"""
from __future__ import annotations

from .lif import V_THRESHOLD, check_reset, lif_reset
from .qif import (A0, TAU, V_C, bounded, check_rest_below_critical, hard_reset_kernel, quadratic,
                  refused_exports)
from .spec import CppStep, NeuronSpec, Param, State

__all__ = ["IZHIKEVICH"]


def _charge(x, st, p, f):
    v, w = st
    return bounded(v + (x + quadratic(v, p) - w) / p.tau), p.v_threshold, st


def _reset(h, theta, s, sr, st, p, f):
    w = bounded(st[1] + (p.a * (h - p.v_rest) - st[1]) / p.tau_w + p.b * s)
    return lif_reset(h, theta, sr, p, f), w


def _to_kernel(v):
    return dict(tau=v["tau"], a0=v["a0"], v_rest=v["v_rest"], v_c=v["v_c"], a=v["a"], b=v["b"],
                tau_w=v["tau_w"], w_rest=v["w_rest"], **hard_reset_kernel(v))


IZHIKEVICH = NeuronSpec(
    name="izhikevich", states=(State("v", init="v_reset"), State("w", init="w_rest", doc="adaptation current")),
    params=(TAU, V_C, A0, V_THRESHOLD,
            Param("v_reset", 0.0, optional=True, doc="V_reset; None: soft reset (subtract V_th)"),
            Param("v_rest", -0.1, doc="resting potential (stable point)"),
            Param("w_rest", 0.0, doc="initial adaptation current"),
            Param("tau_w", 2.0, low=1.0, doc="adaptation time constant"),
            Param("a", 0.0, doc="subthreshold coupling of W to V"),
            Param("b", 0.0, doc="jump of W per spike")),
    kernel_params=("tau", "a0", "v_rest", "v_c", "v_threshold", "v_reset", "a", "b", "tau_w", "w_rest"),
    kernel_flags=("hard_reset",), saved=3, to_kernel=_to_kernel, charge=_charge, reset=_reset,
    checks=(check_reset, check_rest_below_critical),
    cpp=CppStep("IzhikevichStep", header="neurons/izhikevich.h"), triton="snn.kernels.izhikevich",
    exports=refused_exports("Izhikevich"),
    doc="Izhikevich neuron with adaptation current (SpikingJelly's IzhikevichNode)")
