"""The IF / LIF / PLIF step (:mod:`snn.neurons.lif`) as Triton functions for the generic skeleton
(:mod:`.scan`). Parameters ``(d, V_th, V_r)``; ``FLAGS`` bit 0 hard reset, bit 1 decay_input; saved: ``m``::

    charge    H = V + (X - (V - V_r))·d  (decay_input)   or   V - (V - V_r)·d + X;     θ = V_th
    reset     hard: V = H·(1 - S) + V_r·S                 soft: V = H - θ·S
    backward  hard: gH = gV·(1 - S) + (gS + keep·gV·(V_r - H))·σ'    soft: gH = gV + (gS - keep·gV·θ)·σ'
              ∂L/∂X = gH·d (decay_input) or gH;  gV ← gH·(1 - d);  ∂L/∂d += gH·∂H/∂d(V[t-1], X[t])
"""
import triton
import triton.language as tl

from .steps import lif_charge, lif_input_grads, lif_reset


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    return lif_charge(st[0], x, p[0], p[2], FLAGS & 2), p[1], st, ()


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return (lif_reset(h, s, theta, p[2], FLAGS & 1),)


@triton.jit
def lif_grad_h(gv, gs, s, h, sg, theta, vr, HARD: tl.constexpr, KEEP: tl.constexpr):
    """∂L/∂H of a LIF-style reset at θ (shared with ALIF; CUBALIF is the hard reset with V_r = 0)."""
    if HARD:
        if KEEP:
            return gv * (1.0 - s) + (gs + gv * (vr - h)) * sg
        else:
            return gv * (1.0 - s) + gs * sg
    else:
        if KEEP:
            return gv + (gs - gv * theta) * sg
        else:
            return gv + gs * sg


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    d, vth, vr = p[0], p[1], p[2]
    gh = lif_grad_h(g[0], gs, s, sv[0] + vth, sg, vth, vr, FLAGS & 1, KEEP)
    gx, gp = lif_input_grads(gh, prev, x, d, vr, FLAGS & 2, LEARN)
    return gx, (gh * (1.0 - d),), gp


@triton.jit
def restore(sv, s, p, FLAGS: tl.constexpr):
    return (lif_reset(sv[0] + p[1], s, p[1], p[2], FLAGS & 1),)
