"""ALIF: LIF with an adaptive threshold.

The membrane is LIF's (:mod:`.lif`); the threshold adapts with the state ``B``::

    H[t] = charge(V[t-1], X[t])                 (LIF's, decay_input or not)
    θ[t] = V_th + β·B[t-1]
    S[t] = Θ(H[t] - θ[t])                        (strict_threshold: H[t] > θ[t])
    V[t] = hard or soft reset of H[t] at θ[t];   B[t] = ρ·B[t-1] + S[t]

``B[t] = A[t+1]`` of the textbook form ``A[t] = ρ·A[t-1] + S[t-1]``, carried as the state so that single-
and multi-step runs agree. Kernel parameters ``(decay, v_threshold, v_reset, rho, beta)``, flags
``(hard_reset, decay_input)``. C++: ``csrc/neurons/alif.h``; Triton: :mod:`snn.kernels.alif`.
"""
from __future__ import annotations

from .lif import DECAY_INPUT, V_RESET, V_THRESHOLD, check_reset, lif_charge, lif_reset
from .spec import CppStep, NeuronSpec, Param, State

__all__ = ["ALIF"]


def _charge(x, st, p, f):
    v, b = st
    return lif_charge(v, x, p, f), p.v_threshold + p.beta * b, st


def _reset(h, theta, s, sr, st, p, f):
    return lif_reset(h, theta, sr, p, f), p.rho * st[1] + s


def _to_kernel(v):
    hard = v["v_reset"] is not None
    return dict(decay=1.0 / v["tau"], v_threshold=v["v_threshold"], v_reset=v["v_reset"] if hard else 0.0,
                rho=v["rho"], beta=v["beta"], hard_reset=hard, decay_input=v["decay_input"])


ALIF = NeuronSpec(
    name="alif",
    states=(State("v", init="v_reset"), State("b", doc="threshold adaptation B[t] = A[t+1]")),
    params=(Param("tau", 2.0, low=1.0), V_THRESHOLD, V_RESET, DECAY_INPUT,
            Param("rho", 0.9, low=0.0, high=1.0, high_open=True, doc="adaptation decay"),
            Param("beta", 0.1, low=0.0, doc="adaptation strength")),
    kernel_params=("decay", "v_threshold", "v_reset", "rho", "beta"), kernel_flags=("hard_reset", "decay_input"),
    learnable=1, saved=2, to_kernel=_to_kernel, charge=_charge, reset=_reset, checks=(check_reset,),
    cpp=CppStep("ALIFStep", header="neurons/alif.h"), triton="snn.kernels.alif",
    exports={"nir": {"refuse": "an adaptive threshold (ALIF) has no NIR counterpart"},
             "loihi": {"refuse": "adaptive thresholds (ALIF) have no Lava LIF counterpart"}},
    doc="adaptive-threshold LIF")
