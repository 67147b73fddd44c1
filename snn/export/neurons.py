r"""How snn's own neuron families map to NIR and to Loihi: the functions their specs name in ``exports``.

Each spec (``snn/neurons/<family>.py``) points at these by ``"snn.export.neurons:<function>"``; the exporters
find them through :mod:`snn.export.registry` (exact class, never a base class). One snn step is ``dt`` seconds
in NIR (forward Euler, see :mod:`snn.export.nir`); Loihi is Lava's CUBA LIF (see :mod:`snn.export.loihi.lowering`)::

    IF(V_th, V_r)             NIR IF(r = 1/dt, v_threshold, v_reset)     Loihi du = 1, dv = 0,   vth = V_th - V_r
    LIF/PLIF(tau)             NIR LIF(tau = tau·dt, r = 1 (decay_input)  Loihi du = 1, dv = 1/tau, vth = V_th - V_r,
                              or tau, v_leak = V_r)                      input ×1/tau when decay_input
    CUBALIF(du, dv, V_th, b)  NIR CubaLIF(tau_syn = dt/du, tau_mem =     Loihi itself
                              dt/dv, w_in = 1/du, r = 1/dv, v_leak = b/dv)

Soft reset has no counterpart in either (both reset to a potential); the error names the layer.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .loihi.lowering import CubaParams
from .nir import _nir, nir_threshold
from .registry import LoweringError, NIRContext, NIRImportContext

_ULPS = 8                   # float64 neighbours tried each way for an exactly round-tripping parameter


def hard_reset(m, name: str, target: str) -> float:
    """``V_reset`` of a hard-reset neuron; soft reset (``v_reset=None``) cannot be written to ``target``."""
    if m.v_reset is None:
        raise LoweringError(f"layer {name} ({type(m).__name__}): soft reset (v_reset=None) cannot be expressed in "
                            f"{target}, which resets to a potential; use a hard reset (v_reset=0.0)")
    return float(m.v_reset)


# ----------------------------------------------------------------------------------------------------------------
# NIR parameters that round-trip exactly
# ----------------------------------------------------------------------------------------------------------------
def _exact_param(guess: float, decode, target: np.float32) -> float:
    """The float64 within ``_ULPS`` ulps of ``guess`` (nearest first, same sign) whose ``decode`` is ``target``:
    what the import recomputes from it is then snn's float32 value bit for bit. ``guess`` if none."""
    up = down = float(guess)
    candidates = [up]
    for _ in range(_ULPS):
        up, down = float(np.nextafter(up, math.inf)), float(np.nextafter(down, -math.inf))
        candidates += [up, down]
    for cand in candidates:
        if math.isfinite(cand) and np.sign(cand) == np.sign(guess) and decode(cand) == target:
            return cand
    return float(guess)


def _lif_tau(decay: float, dt: float) -> float:
    """NIR ``tau`` for a LIF decay ``d = 1/tau_snn``; the import reads ``1 / (tau/dt)``."""
    return _exact_param(dt / decay, lambda c: np.float32(1.0 / (c / dt)), np.float32(decay))


def _cuba_tau(d: float, dt: float) -> float:
    """NIR ``tau_syn``/``tau_mem`` for a CUBALIF decay ``d``; snn computes ``float32(1 - d)`` from ``d = dt/tau``."""
    return _exact_param(dt / d, lambda c: np.float32(1.0 - dt / c), np.float32(1.0 - d))


def _cuba_v_leak(bias: float, dv: float) -> float:
    """NIR ``v_leak`` for a CUBALIF bias; the import reads ``bias = v_leak·dv``."""
    return _exact_param(bias / dv, lambda c: np.float32(c * dv), np.float32(bias))


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-5, atol=1e-12))


# ----------------------------------------------------------------------------------------------------------------
# IF, LIF, PLIF
# ----------------------------------------------------------------------------------------------------------------
def if_to_nir(m, ctx: NIRContext):
    """IF: ``r = 1/dt`` (one step is dt), threshold for the neuron's comparison, ``v_reset``."""
    v_reset = hard_reset(m, ctx.name, "NIR")
    return _nir().IF(r=ctx.full(1 / ctx.dt), v_threshold=ctx.full(nir_threshold(m.v_threshold, m.strict_threshold)),
                     v_reset=ctx.full(v_reset))


def if_from_nir(node, ctx: NIRImportContext):
    from ..neuron import IF

    p = ctx.scalar
    if not _close(p("r"), 1 / ctx.dt):
        raise ValueError(f"r = {p('r'):g} must be 1/dt = {1 / ctx.dt:g} (one snn step is dt)")
    return IF(v_threshold=p("v_threshold"), v_reset=p("v_reset"), **ctx.neuron_kw)


def lif_to_nir(m, ctx: NIRContext):
    """LIF/PLIF: ``tau = tau_snn·dt``, ``r = 1`` (decay_input) or ``tau_snn``, ``v_leak = v_reset``."""
    v_reset = hard_reset(m, ctx.name, "NIR")
    decay = float(torch.as_tensor(m.decay()).detach())
    tau, r = _lif_tau(decay, ctx.dt), 1.0 if m.decay_input else 1.0 / decay
    return _nir().LIF(tau=ctx.full(tau, np.float64), r=ctx.full(r, np.float64),
                      v_leak=ctx.full(v_reset), v_threshold=ctx.full(nir_threshold(m.v_threshold, m.strict_threshold)),
                      v_reset=ctx.full(v_reset))


def lif_from_nir(node, ctx: NIRImportContext):
    from ..neuron import LIF

    p = ctx.scalar
    tau = p("tau") / ctx.dt
    r, v_reset = p("r"), p("v_reset")
    if not _close(p("v_leak"), v_reset):
        raise ValueError(f"v_leak = {p('v_leak'):g} must equal v_reset = {v_reset:g}")
    if not (_close(r, 1.0) or _close(r, tau)):
        raise ValueError(f"r = {r:g} must be 1 (decay_input) or tau/dt = {tau:g}")
    return LIF(tau=tau, v_threshold=p("v_threshold"), v_reset=v_reset,
               decay_input=_close(r, 1.0) and not _close(tau, 1.0), **ctx.neuron_kw)


def if_to_cuba(neuron, name) -> CubaParams:
    """IF: du = 1, dv = 0, vth = V_th - V_reset."""
    return CubaParams(du=1.0, dv=0.0, vth=float(neuron.v_threshold) - hard_reset(neuron, name, "Lava's LIF"),
                      strict=bool(neuron.strict_threshold))


def lif_to_cuba(neuron, name) -> CubaParams:
    """LIF/PLIF: du = 1, dv = d = 1/tau, vth = V_th - V_reset; the input is scaled by d when decay_input."""
    k = float(torch.as_tensor(neuron.decay()).detach())
    return CubaParams(du=1.0, dv=k, vth=float(neuron.v_threshold) - hard_reset(neuron, name, "Lava's LIF"),
                      weight_scale=k if neuron.decay_input else 1.0, strict=bool(neuron.strict_threshold))


# ----------------------------------------------------------------------------------------------------------------
# CUBALIF
# ----------------------------------------------------------------------------------------------------------------
def cubalif_to_nir(m, ctx: NIRContext):
    """CUBALIF: ``tau_syn = dt/du``, ``tau_mem = dt/dv``, ``w_in = 1/du``, ``r = 1/dv``, ``v_leak = bias/dv``."""
    if m.du <= 0 or m.dv <= 0:
        raise LoweringError(f"layer {ctx.name} (CUBALIF): du={m.du}, dv={m.dv}: NIR's CubaLIF needs du, dv > 0 "
                            f"(finite time constants)")
    dt, f64 = ctx.dt, np.float64
    tau_syn, tau_mem = _cuba_tau(m.du, dt), _cuba_tau(m.dv, dt)
    du, dv = dt / tau_syn, dt / tau_mem
    return _nir().CubaLIF(tau_syn=ctx.full(tau_syn, f64), tau_mem=ctx.full(tau_mem, f64), r=ctx.full(1 / dv, f64),
                          w_in=ctx.full(1 / du, f64), v_leak=ctx.full(_cuba_v_leak(m.bias, dv), f64),
                          v_threshold=ctx.full(nir_threshold(m.v_threshold, True)), v_reset=ctx.full(0.0))


def cubalif_from_nir(node, ctx: NIRImportContext):
    from ..neuron import CUBALIF

    p = ctx.scalar
    du, dv = ctx.dt / p("tau_syn"), ctx.dt / p("tau_mem")
    if not (_close(p("w_in"), 1 / du) and _close(p("r"), 1 / dv)):
        raise ValueError(f"w_in = {p('w_in'):g} and r = {p('r'):g} must be tau_syn/dt = {1 / du:g} and "
                         f"tau_mem/dt = {1 / dv:g}")
    if p("v_reset") != 0.0:
        raise ValueError(f"v_reset = {p('v_reset'):g}: CUBALIF resets to 0")
    return CUBALIF(du=du, dv=dv, v_threshold=p("v_threshold"), bias=p("v_leak") * dv, **ctx.neuron_kw)


def cubalif_to_cuba(neuron, name) -> CubaParams:
    """CUBALIF: itself (always strict)."""
    return CubaParams(du=float(neuron.du), dv=float(neuron.dv), vth=float(neuron.v_threshold),
                      bias=float(neuron.bias), strict=True)
