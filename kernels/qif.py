"""QIF step as Triton device functions (the generic skeleton's contract: :mod:`snn.neurons.spec`), and the pieces
EIF (:mod:`.eif`) and Izhikevich (:mod:`.izhikevich`) share with it.

Reference: :mod:`snn.neurons.qif`, with its operation order (spikes bit-identical)::

    charge    H = B(V + (X + a0·(V - V_rest)·(V - V_c)) / tau);   θ = V_th;    saved: V (before)
    reset     hard: V = H·(1 - S) + V_r·S;   soft: V = H - θ·S
    backward  gH = [|H| < L]·(gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ));   gX = gH / tau
              gV ← gH·(1 + a0·(2V - V_rest - V_c) / tau)

``B`` clamps to ``[-L, L]``, ``L = 2^100``. Divisions round to nearest (``div_rn`` in float32: Triton's ``/`` is
the approximate division there). ``p = (tau, a0, v_rest, v_c, v_threshold, v_reset)``; ``FLAGS`` bit 0:
hard reset.
"""
import triton
import triton.language as tl

LIMIT: tl.constexpr = 2.0 ** 100


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
def reset_v(h, theta, s, vr, FLAGS: tl.constexpr):
    """Hard: V = H·(1 - S) + V_r·S;  soft: V = H - θ·S."""
    if FLAGS & 1:
        return h * (1.0 - s) + vr * s
    else:
        return h - theta * s


@triton.jit
def grad_h(h, theta, s, sg, gs, gv, keep, vr, FLAGS: tl.constexpr):
    """gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ) of the reset above (before the bound's mask)."""
    if FLAGS & 1:
        return gs * sg + gv * ((1.0 - s) + keep * (vr - h) * sg)
    else:
        return gs * sg + gv * (1.0 - keep * theta * sg)


@triton.jit
def charge(x, st, p, FLAGS: tl.constexpr):
    tau, a0, rest, crit, vth, vr = p
    v = st[0]
    h = bounded(v + div(x + quadratic(v, a0, rest, crit), tau))
    return h, vth, st, (v,)


@triton.jit
def reset(h, theta, s, st, p, FLAGS: tl.constexpr):
    return (reset_v(h, theta, s, p[5], FLAGS),)


@triton.jit
def backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
    tau, a0, rest, crit, vth, vr = p
    h = sv[0] + vth
    gh = tl.where(unbounded(h), grad_h(h, vth, s, sg, gs, g[0], KEEP, vr, FLAGS), 0.0)
    return div(gh, tau), (gh * (1.0 + div(quadratic_dv(sv[1], a0, rest, crit), tau)),), ()
