"""The CUBALIF step (:mod:`snn.neurons.cubalif`) as Triton functions for the generic skeleton (:mod:`.scan`).
Parameters ``(c_u, c_v, V_th, bias)`` (``c_u = 1 - du`` formed in double precision on the host); no flags;
saved: ``m``::

    charge    U = U·c_u + X;   H = V·c_v + U + bias;   θ = V_th
    reset     V = H·(1 - S)
    backward  gH = gV·(1 - S) + (gS - keep·gV·H)·σ';   gU ← gU + gH;   ∂L/∂X = gU
              gU ← gU·c_u;   gV ← gH·c_v
"""
import triton
import triton.language as tl

from .lif import lif_grad_h


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    u = st[0] * p[0] + x
    return st[1] * p[1] + u + p[3], p[2], (u, st[1]), ()


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return st[0], h * (1.0 - s)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    gh = lif_grad_h(g[1], gs, s, sv[0] + p[2], sg, p[2], 0.0, True, KEEP)  # the hard reset to V_r = 0
    gu = g[0] + gh
    return gu, (gu * p[0], gh * p[1]), ()
