"""QIF: the quadratic integrate-and-fire neuron (SpikingJelly's ``QIFNode``)::

    H[t] = B(V[t-1] + (X[t] + a0·(V[t-1] - V_rest)·(V[t-1] - V_c)) / tau)
    S[t] = Θ(H[t] - V_th)                  (strict_threshold: H[t] > V_th)
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_reset·S[t]        soft (v_reset=None):  V[t] = H[t] - V_th·S[t]

``V[0] = V_reset`` (0 for soft). ``B`` bounds the membrane to ``[-LIMIT, LIMIT]`` (``LIMIT = 2^100 ≈ 1.27e30``,
exact in float32 and float64), with no gradient through a bounded value: the quadratic term makes V blow up in
finite time once it passes the unstable point ``V_c`` without a reset pulling it back (soft reset, large
inputs), and SpikingJelly's state then turns ``inf`` and its gradients ``nan``; here such a neuron fires on every
step with a finite state and finite gradients. Below the bound every value, spike and gradient is
SpikingJelly's.

Valid parameters: ``tau >= 1``, ``a0 > 0``, ``V_rest < V_c`` (the stable resting point below the critical,
unstable one), hard reset ``V_reset < V_th``, soft reset ``V_th > 0``. Kernel parameters
``(tau, a0, v_rest, v_c, v_threshold, v_reset)``, flag ``hard_reset``. C++: ``csrc/neurons/qif.h``;
Triton: :mod:`snn.kernels.qif`.

:data:`LIMIT`, :func:`bounded` and :func:`quadratic` are shared with EIF and Izhikevich.
"""
from __future__ import annotations

import torch

from .lif import V_THRESHOLD, check_reset, lif_reset
from .spec import CppStep, NeuronSpec, Param, State

__all__ = ["QIF", "LIMIT", "bounded", "quadratic", "check_rest_below_critical", "TAU", "A0", "V_REST", "V_C",
           "V_RESET", "hard_reset_kernel", "refused_exports"]

LIMIT = 2.0 ** 100  # |H| (and Izhikevich's |W|) never exceeds this; exact in float32 and float64


def bounded(h):
    """``h`` clamped to ``[-LIMIT, LIMIT]``; the gradient passes only where ``|h| < LIMIT``."""
    return torch.where(h.abs() < LIMIT, h, h.clamp(-LIMIT, LIMIT).detach())


def quadratic(v, p):
    """a0·(V - V_rest)·(V - V_c), in the kernels' operation order."""
    return p.a0 * (v - p.v_rest) * (v - p.v_c)


def check_rest_below_critical(values, who: str) -> None:
    """V_rest must lie below V_c: the resting point is the stable zero of the quadratic, V_c the unstable one."""
    if not values["v_rest"] < values["v_c"]:
        raise ValueError(f"{who}: v_rest must be below v_c (the resting potential is the stable point, v_c the "
                         f"critical one above it), got v_rest={values['v_rest']}, v_c={values['v_c']}")


def hard_reset_kernel(values) -> dict:
    """The reset part of a kernel block: ``v_reset`` (0 with soft reset) and the ``hard_reset`` flag."""
    hard = values["v_reset"] is not None
    return dict(v_threshold=values["v_threshold"], v_reset=values["v_reset"] if hard else 0.0, hard_reset=hard)


def refused_exports(neuron: str) -> dict:
    """``exports`` of a neuron that neither NIR nor Loihi can express: export is an error naming the reason."""
    return {"nir": {"refuse": f"NIR has no {neuron} node (its neuron nodes are I, LI, IF, LIF, CubaLI and CubaLIF)"},
            "loihi": {"refuse": f"Loihi runs the CUBA LIF neuron only, which cannot express {neuron}'s dynamics"}}


def _charge(x, st, p, f):
    v = st[0]
    return bounded(v + (x + quadratic(v, p)) / p.tau), p.v_threshold, st


def _reset(h, theta, s, sr, st, p, f):
    return (lif_reset(h, theta, sr, p, f),)


TAU = Param("tau", 2.0, low=1.0, doc="membrane time constant")
A0 = Param("a0", 1.0, low=0.0, low_open=True, doc="quadratic coefficient")
V_REST = Param("v_rest", 0.0, doc="resting potential (stable point)")
V_C = Param("v_c", 0.8, doc="critical potential (unstable point)")
V_RESET = Param("v_reset", -0.1, optional=True, doc="V_reset; None: soft reset (subtract V_th)")

QIF = NeuronSpec(
    name="qif", states=(State("v", init="v_reset"),),
    params=(TAU, V_C, A0, V_THRESHOLD, V_REST, V_RESET),
    kernel_params=("tau", "a0", "v_rest", "v_c", "v_threshold", "v_reset"), kernel_flags=("hard_reset",),
    saved=2,
    to_kernel=lambda v: dict(tau=v["tau"], a0=v["a0"], v_rest=v["v_rest"], v_c=v["v_c"], **hard_reset_kernel(v)),
    charge=_charge, reset=_reset, checks=(check_reset, check_rest_below_critical),
    cpp=CppStep("QIFStep", header="neurons/qif.h"), triton="snn.kernels.qif",
    exports=refused_exports("QIF"),
    doc="quadratic integrate-and-fire (SpikingJelly's QIFNode)")
