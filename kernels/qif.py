"""QIF step as Triton device functions (the generic skeleton's contract: :mod:`snn.neurons.spec`), and the pieces
EIF (:mod:`.eif`) and Izhikevich (:mod:`.izhikevich`) share with it.

Reference: :mod:`snn.neurons.qif`, with its operation order (spikes bit-identical)::

    charge    H = B(V + (X + a0·(V - V_rest)·(V - V_c)) / tau);   θ = V_th;    saved: V (before)
    reset     hard: V = H·(1 - S) + V_r·S;   soft: V = H - θ·S               (LIF's, :mod:`.lif`)
    backward  gH = [|H| < L]·(LIF's ∂L/∂H of the reset);   gX = gH / tau
              gV ← gH·(1 + a0·(2V - V_rest - V_c) / tau)

``B`` clamps to ``[-L, L]``, ``L = 2^100``. Divisions round to nearest (``div_rn`` in float32: Triton's ``/`` is
the approximate division there). ``p = (tau, a0, v_rest, v_c, v_threshold, v_reset)``; ``FLAGS`` bit 0:
hard reset.
"""
import triton
import triton.language as tl

from .lif import lif_grad_h
from .steps import lif_reset

LIMIT = tl.constexpr(2.0 ** 100)


@triton.jit
def div(a, b):
    """a / b rounded to nearest, as torch and C++ divide."""
    if a.dtype == tl.float32:
        return tl.div_rn(a, b)
    else:
        return a / b


@triton.jit
def bounded(h):
    """h clamped to [-2^100, 2^100]."""
    return tl.minimum(tl.maximum(h, -LIMIT), LIMIT)


@triton.jit
def unbounded(h):
    """Whether a gradient passes through the bound at its output h: |h| < 2^100."""
    return (h < LIMIT) & (h > -LIMIT)


@triton.jit
def quadratic(v, a0, rest, crit):
    return a0 * (v - rest) * (v - crit)


@triton.jit
def quadratic_dv(v, a0, rest, crit):
    return a0 * (2.0 * v - rest - crit)


@triton.jit
def grad_h(m, s, sg, gs, gv, other, vth, vr, FLAGS: tl.constexpr, KEEP: tl.constexpr):
    """∂L/∂H = [|H| < L]·(LIF's ∂L/∂H of the reset + other) at H = m + θ (shared with EIF and Izhikevich;
    ``other``: the model's own terms)."""
    h = m + vth
    return tl.where(unbounded(h), lif_grad_h(gv, gs, s, h, sg, vth, vr, FLAGS & 1, KEEP) + other, 0.0)


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    tau, a0, rest, crit, vth, vr = p
    v = st[0]
    h = bounded(v + div(x + quadratic(v, a0, rest, crit), tau))
    return h, vth, st, (v,)


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    """LIF's reset of V with V_r = p[5] (shared with EIF)."""
    return (lif_reset(h, s, theta, p[5], FLAGS & 1),)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    tau, a0, rest, crit, vth, vr = p
    gh = grad_h(sv[0], s, sg, gs, g[0], 0.0, vth, vr, FLAGS, KEEP)
    return div(gh, tau), (gh * (1.0 + div(quadratic_dv(sv[1], a0, rest, crit), tau)),), ()
