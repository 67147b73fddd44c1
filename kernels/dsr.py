"""The DSR neuron step (:mod:`snn.neurons.dsr`) as Triton functions for the generic skeleton (:mod:`.scan`).
Parameters ``(λ, v_fire = α·V_th, V_th)``; no flags; saved: ``m``::

    charge    H = U·λ + X;   θ = v_fire
    reset     U = H - V_th·S                  (LIF's soft reset, by V_th instead of θ)
    backward  gH = gU + (gS - keep·gU·V_th)·σ';   ∂L/∂X = gH;   gU ← gH·λ
"""
import triton
import triton.language as tl

from .lif import lif_grad_h
from .steps import lif_reset


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    return st[0] * p[0] + x, p[1], st, ()


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return (lif_reset(h, s, p[2], 0.0, False),)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    gh = lif_grad_h(g[0], gs, s, sv[0], sg, p[2], 0.0, False, KEEP)
    return gh, (gh * p[0],), ()
