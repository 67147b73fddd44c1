"""IF, LIF and PLIF: one step (SpikingJelly's ``IFNode``, ``LIFNode``, ``ParametricLIFNode``), three specs.

With ``d`` the decay (``1/tau``; ``0`` for IF; ``sigmoid(w)`` for PLIF, learnable) and ``V_r`` the reset
potential (read as 0 in the charge with soft reset)::

    decay_input=True :  H[t] = V[t-1] + (X[t] - (V[t-1] - V_r))·d
    decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_r)·d + X[t]
    S[t] = Θ(H[t] - V_th)                  (strict_threshold: H[t] > V_th)
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_r·S[t]        soft (v_reset=None):  V[t] = H[t] - V_th·S[t]

``V[0] = V_r`` (0 for soft). Kernel parameters ``(decay, v_threshold, v_reset)``, flags ``(hard_reset,
decay_input)``. C++: ``csrc/neurons/lif.h``; Triton: :mod:`snn.kernels.lif`.
"""
from __future__ import annotations

import math

import torch

from .spec import CppStep, Flag, Learned, NeuronSpec, Param, State

__all__ = ["IF", "LIF", "PLIF", "lif_charge", "lif_reset", "check_reset"]


def lif_charge(v, x, p, f):
    """H = V + (X - (V - V_r))·d (decay_input) or V - (V - V_r)·d + X, in the kernels' operation order."""
    if f.decay_input:
        return v + (x - (v - p.v_reset)) * p.decay
    return v - (v - p.v_reset) * p.decay + x


def lif_reset(h, theta, sr, p, f):
    """Hard: V = H·(1 - S) + V_r·S; soft: V = H - θ·S."""
    if f.hard_reset:
        return h * (1.0 - sr) + p.v_reset * sr
    return h - theta * sr


def _charge(x, st, p, f):
    return lif_charge(st[0], x, p, f), p.v_threshold, st


def _reset(h, theta, s, sr, st, p, f):
    return (lif_reset(h, theta, sr, p, f),)


def check_reset(values, who: str) -> None:
    """Hard reset needs V_reset < V_th; soft reset (None) needs V_th > 0."""
    vth, vr = values["v_threshold"], values["v_reset"]
    if vr is None and vth <= 0:
        raise ValueError(f"{who}: with soft reset (v_reset=None) v_threshold must be > 0, got {vth}")
    if vr is not None and vr >= vth:
        raise ValueError(f"{who}: v_reset must be below v_threshold ({vth}), got v_reset={vr}")


def _kernel(decay):
    """``to_kernel`` of a LIF-like spec whose decay is ``decay(values)``."""
    def to_kernel(v):
        hard = v["v_reset"] is not None
        return dict(decay=decay(v), v_threshold=v["v_threshold"], v_reset=v["v_reset"] if hard else 0.0,
                    hard_reset=hard, decay_input=v.get("decay_input", False))
    return to_kernel


_EXPORT = "snn.export.neurons:"     # the NIR/Loihi mappings (snn.export.neurons), imported on first export
V_THRESHOLD = Param("v_threshold", 1.0, doc="V_th")
V_RESET = Param("v_reset", 0.0, optional=True, doc="V_reset; None: soft reset (subtract V_th)")
DECAY_INPUT = Flag("decay_input", True, doc="the input is scaled by the decay")

_COMMON = dict(states=(State("v", init="v_reset"),), kernel_params=("decay", "v_threshold", "v_reset"),
               kernel_flags=("hard_reset", "decay_input"), learnable=1, charge=_charge, reset=_reset,
               checks=(check_reset,), cpp=CppStep("LIFStep", header="neurons/lif.h"), triton="snn.kernels.lif")

LIF = NeuronSpec(
    name="lif", params=(Param("tau", 2.0, low=1.0, doc="membrane time constant (decay 1/tau in (0, 1])"),
                        V_THRESHOLD, V_RESET, DECAY_INPUT),
    to_kernel=_kernel(lambda v: 1.0 / v["tau"]), doc="leaky integrate-and-fire",
    exports={"nir": {"to": _EXPORT + "lif_to_nir", "node": "LIF", "from": _EXPORT + "lif_from_nir"},
             "loihi": _EXPORT + "lif_to_cuba"}, **_COMMON)

IF = NeuronSpec(
    name="if", params=(V_THRESHOLD, V_RESET), to_kernel=_kernel(lambda v: 0.0), doc="integrate-and-fire",
    exports={"nir": {"to": _EXPORT + "if_to_nir", "node": "IF", "from": _EXPORT + "if_from_nir"},
             "loihi": _EXPORT + "if_to_cuba"}, **_COMMON)

PLIF = NeuronSpec(
    name="plif", params=(Param("init_tau", 2.0, low=1.0, low_open=True, doc="initial tau (w0 = -log(tau - 1))"),
                         V_THRESHOLD, V_RESET, DECAY_INPUT),
    learned=(Learned("w", lambda v: -math.log(v["init_tau"] - 1.0), doc="1/tau = sigmoid(w)"),),
    to_kernel=_kernel(lambda v: torch.sigmoid(v["w"])), doc="parametric LIF: 1/tau = sigmoid(w), w learnable",
    exports={"nir": _EXPORT + "lif_to_nir", "loihi": _EXPORT + "lif_to_cuba"},   # NIR's LIF reads back as a LIF
    **_COMMON)
