"""EIF: the exponential integrate-and-fire neuron (SpikingJelly's ``EIFNode``)::

    u    = min((V[t-1] - θ_rh) / Δ_T, 80)
    H[t] = B(V[t-1] + (X[t] + V_rest - V[t-1] + Δ_T·exp(u)) / tau)
    S[t] = Θ(H[t] - V_th)                  (strict_threshold: H[t] > V_th)
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_reset·S[t]        soft (v_reset=None):  V[t] = H[t] - V_th·S[t]

``V[0] = V_reset`` (0 for soft); ``B`` bounds the membrane to ``[-2^100, 2^100]`` as in :mod:`.qif`.
The exponent is capped at 80 (``exp(80) ≈ 5.5e34``, finite in float32): SpikingJelly's ``exp`` overflows to
``inf`` once ``V - θ_rh > 88·Δ_T`` (soft reset with a large input, or a hard reset with ``(V_th - θ_rh)/Δ_T``
above 88), which makes its next state and its gradients ``nan`` and silences the neuron; here the neuron fires,
the state stays finite and the gradient through a capped exponent is 0. A neuron that reaches the cap is far
above any threshold (``H > Δ_T·5.5e34/tau``), so the cap changes no spike of a finite SpikingJelly run.

Valid parameters: ``tau >= 1``, ``Δ_T > 0``, any finite ``θ_rh``; hard reset ``V_reset < V_th``, soft reset
``V_th > 0``. Kernel parameters ``(tau, delta_T, theta_rh, v_rest, v_threshold, v_reset)``, flag
``hard_reset``. C++: ``csrc/neurons/eif.h``; Triton: :mod:`snn.kernels.eif`.
"""
from __future__ import annotations

import torch

from .lif import V_THRESHOLD, check_reset, lif_reset
from .qif import TAU, V_REST, V_RESET, bounded, hard_reset_kernel, refused_exports
from .spec import CppStep, NeuronSpec, Param, State

__all__ = ["EIF", "EXP_CAP"]

EXP_CAP = 80.0  # the exponent (V - θ_rh)/Δ_T is capped here


def _charge(x, st, p, f):
    v = st[0]
    e = torch.exp(((v - p.theta_rh) / p.delta_T).clamp(max=EXP_CAP))
    return bounded(v + (x + p.v_rest - v + p.delta_T * e) / p.tau), p.v_threshold, st


def _reset(h, theta, s, sr, st, p, f):
    return (lif_reset(h, theta, sr, p, f),)


EIF = NeuronSpec(
    name="eif", states=(State("v", init="v_reset"),),
    params=(TAU, Param("delta_T", 1.0, low=0.0, low_open=True, doc="sharpness Δ_T"),
            Param("theta_rh", 0.8, doc="rheobase threshold θ_rh"), V_THRESHOLD, V_REST, V_RESET),
    kernel_params=("tau", "delta_T", "theta_rh", "v_rest", "v_threshold", "v_reset"), kernel_flags=("hard_reset",),
    saved=2,
    to_kernel=lambda v: dict(tau=v["tau"], delta_T=v["delta_T"], theta_rh=v["theta_rh"], v_rest=v["v_rest"],
                             **hard_reset_kernel(v)),
    charge=_charge, reset=_reset, checks=(check_reset,),
    cpp=CppStep("EIFStep", header="neurons/eif.h"), triton="snn.kernels.eif",
    exports=refused_exports("EIF"),
    doc="exponential integrate-and-fire (SpikingJelly's EIFNode)")
