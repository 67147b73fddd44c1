"""The ALIF step (:mod:`snn.neurons.alif`) as Triton functions for the generic skeleton (:mod:`.scan`).
Parameters ``(d, V_th, V_r, ρ, β)``; ``FLAGS`` as LIF's; saved: ``m`` and ``B`` (the state before)::

    charge    H = LIF charge of V;   θ = V_th + β·B
    reset     V = LIF reset of H at θ;   B ← ρ·B + S
    backward  gS = ∂L/∂S + gB + keep·(hard: gV·(V_r - H) | soft: -gV·θ);   gZ = gS·σ'
              gH = gZ + (hard: gV·(1 - S) | soft: gV);   gθ = -gZ (soft: - gV·S)
              gB ← ρ·gB + β·gθ;   ∂L/∂X = gH·d or gH;   gV ← gH·(1 - d);   ∂L/∂d += gH·∂H/∂d
"""
import triton
import triton.language as tl

from .steps import lif_charge, lif_input_grads, lif_reset


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    return lif_charge(st[0], x, p[0], p[2], FLAGS & 2), p[1] + p[4] * st[1], st, (st[1],)


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return lif_reset(h, s, theta, p[2], FLAGS & 1), p[3] * st[1] + s


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    d, vth, vr, rho, beta = p[0], p[1], p[2], p[3], p[4]
    gv, gb = g[0], g[1]
    theta = vth + beta * sv[1]
    h = sv[0] + theta
    gsum = gs + gb
    if KEEP:
        if FLAGS & 1:
            gsum += gv * (vr - h)
        else:
            gsum -= gv * theta
    gz = gsum * sg
    if FLAGS & 1:
        gh = gz + gv * (1.0 - s)
        gtheta = -gz
    else:
        gh = gz + gv
        gtheta = -gz - gv * s
    gx, gp = lif_input_grads(gh, prev, x, d, vr, FLAGS & 2, LEARN)
    return gx, (gh * (1.0 - d), rho * gb + beta * gtheta), gp


@triton.jit
def restore(sv, s, p, FLAGS: tl.constexpr):
    theta = p[1] + p[4] * sv[1]
    return lif_reset(sv[0] + theta, s, theta, p[2], FLAGS & 1), p[3] * sv[1] + s
