"""EIF step as Triton device functions (contract: :mod:`snn.neurons.spec`).

Reference: :mod:`snn.neurons.eif`, with its operation order::

    charge    u = min((V - θ_rh) / Δ_T, 80);   H = B(V + (X + V_rest - V + Δ_T·exp(u)) / tau);   θ = V_th
              saved: V (before)
    reset     hard: V = H·(1 - S) + V_r·S;   soft: V = H - θ·S
    backward  gH = [|H| < L]·(gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ));   gX = gH / tau
              gV ← gH·(1 + ([u <= 80]·exp(u) - 1) / tau)

``p = (tau, delta_T, theta_rh, v_rest, v_threshold, v_reset)``; ``FLAGS`` bit 0: hard reset.
"""
import os

import triton
import triton.language as tl

from .qif import bounded, div, grad_h, reset  # noqa: F401 - reset: EIF's is QIF's

EXP_CAP = tl.constexpr(80.0)

if os.environ.get("TRITON_INTERPRET") == "1":
    @triton.jit
    def exp(u):
        """exp(u) (numpy's under the interpreter)."""
        return tl.exp(u)
else:
    from triton.language.extra import libdevice

    @triton.jit
    def exp(u):
        """exp(u): the device library's expf/exp, as torch and the CUDA step compute it (tl.exp is the
        approximate ex2 in float32)."""
        return libdevice.exp(u)


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    tau, delta, theta_rh, rest, vth, vr = p
    v = st[0]
    e = exp(tl.minimum(div(v - theta_rh, delta), EXP_CAP))
    h = bounded(v + div(x + rest - v + delta * e, tau))
    return h, vth, st, (v,)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    tau, delta, theta_rh, rest, vth, vr = p
    u = div(sv[1] - theta_rh, delta)
    gh = grad_h(sv[0], s, sg, gs, g[0], 0.0, vth, vr, FLAGS, KEEP)
    de = tl.where(u <= EXP_CAP, exp(tl.minimum(u, EXP_CAP)), 0.0)
    return div(gh, tau), (gh * (1.0 + div(de - 1.0, tau)),), ()
