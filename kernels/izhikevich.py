"""Izhikevich step as Triton device functions (contract: :mod:`snn.neurons.spec`).

Reference: :mod:`snn.neurons.izhikevich`, with its operation order::

    charge    H = B(V + (X + a0·(V - V_rest)·(V - V_c) - W) / tau);   θ = V_th;   saved: V, W (before)
    reset     W ← B(W + (a·(H - V_rest) - W) / tau_w + b·S);   hard: V = H·(1 - S) + V_r·S;   soft: V = H - θ·S
    backward  gW' = [|W'| < L]·gW
              gH = [|H| < L]·(gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ) + gW'·(a / tau_w + b·σ))
              gX = gH / tau;   gV ← gH·(1 + a0·(2V - V_rest - V_c) / tau);   gW ← gW'·(1 - 1/tau_w) - gH / tau

``p = (tau, a0, v_rest, v_c, v_threshold, v_reset, a, b, tau_w, w_rest)``; ``FLAGS`` bit 0: hard reset.
"""
import triton
import triton.language as tl

from .qif import bounded, div, grad_h, quadratic, quadratic_dv, unbounded
from .steps import lif_reset


@triton.jit
def adapt(w, h, s, p):
    """W + (a·(H - V_rest) - W) / tau_w + b·S, bounded."""
    return bounded(w + div(p[6] * (h - p[2]) - w, p[8]) + p[7] * s)


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    tau, a0, rest, crit, vth = p[0], p[1], p[2], p[3], p[4]
    v, w = st
    h = bounded(v + div(x + quadratic(v, a0, rest, crit) - w, tau))
    return h, vth, st, (v, w)


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return lif_reset(h, s, theta, p[5], FLAGS & 1), adapt(st[1], h, s, p)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    tau, a0, rest, crit, vth, vr, a, b, tau_w = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    gw = tl.where(unbounded(adapt(sv[2], sv[0] + vth, s, p)), g[1], 0.0)
    gh = grad_h(sv[0], s, sg, gs, g[0], gw * (div(a, tau_w) + b * sg), vth, vr, FLAGS, KEEP)
    gv = gh * (1.0 + div(quadratic_dv(sv[1], a0, rest, crit), tau))
    return div(gh, tau), (gv, gw * (1.0 - 1.0 / tau_w) - div(gh, tau)), ()
