"""Triton device functions shared by the generic skeleton (:mod:`.scan`) and the neuron steps
(:mod:`.lif`, :mod:`.alif`, :mod:`.cubalif`, a user's ``TritonStep``): program blocks, masks, firing, and
operations on tuples of blocks (the states, saved values and gradients of one neuron)."""
import triton
import triton.language as tl


@triton.jit
def program_block(N, BLOCK: tl.constexpr):
    """``(program id, this program's BLOCK neuron offsets, mask of those < N)``."""
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    return pid, offs, offs < N


@triton.jit
def before(mask, i, n, BLOCK: tl.constexpr):
    """``mask`` where ``i < n`` (runtime scalars, e.g. a step and T): masks the loads past either end of time."""
    zero = tl.zeros([BLOCK], tl.int32)
    return mask & ((zero + i) < n)


@triton.jit
def fire(m, STRICT: tl.constexpr, CDT: tl.constexpr):
    """S = Θ(m), m = H - θ: 1 where m >= 0, or where m > 0 with ``STRICT``, in the compute dtype."""
    if STRICT:
        return (m > 0).to(CDT)
    else:
        return (m >= 0).to(CDT)


@triton.jit
def load_or_zero(p, mask, PRESENT: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr):
    """The block at ``p`` in the compute dtype, or zeros when the tensor is absent (an unused gradient)."""
    if PRESENT:
        return tl.load(p, mask=mask, other=0.0).to(CDT)
    else:
        return tl.zeros([BLOCK], CDT)


@triton.jit
def load_params(p, COUNT: tl.constexpr, CDT: tl.constexpr):
    """The parameter block (float64 on the device) as a tuple of compute-dtype scalars."""
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (tl.load(p + k).to(CDT),)
    return out


@triton.jit
def load_rows(p, stride, mask, COUNT: tl.constexpr, CDT: tl.constexpr):
    """``COUNT`` blocks at ``p``, ``p + stride``, ... (rows of a stacked tensor) in the compute dtype."""
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (tl.load(p, mask=mask, other=0.0).to(CDT),)
        p += stride
    return out


@triton.jit
def load_rows_if(p, stride, mask, PRESENT: tl.constexpr, COUNT: tl.constexpr, CDT: tl.constexpr,
                 BLOCK: tl.constexpr):
    """Row ``k`` at ``p + k·stride`` where bit ``k`` of ``PRESENT`` is set, zeros elsewhere (unused gradients)."""
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (load_or_zero(p, mask, (PRESENT >> k) & 1, CDT, BLOCK),)
        p += stride
    return out


@triton.jit
def store_rows(p, stride, values, mask, COUNT: tl.constexpr):
    for k in tl.static_range(COUNT):
        tl.store(p, values[k].to(p.dtype.element_ty), mask=mask)
        p += stride


@triton.jit
def zeros_rows(COUNT: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr):
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (tl.zeros([BLOCK], CDT),)
    return out


@triton.jit
def add_at(values, K: tl.constexpr, value, COUNT: tl.constexpr):
    """``values`` with ``value`` added to entry ``K``."""
    out = ()
    for k in tl.static_range(COUNT):
        if k == K:
            out = out + (values[k] + value,)
        else:
            out = out + (values[k],)
    return out


@triton.jit
def add_rows(a, b, mask, COUNT: tl.constexpr):
    """``a + b`` entry by entry, ``b`` counted only where ``mask``."""
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (a[k] + tl.where(mask, b[k], 0.0),)
    return out


@triton.jit
def where_rows(mask, a, b, COUNT: tl.constexpr):
    out = ()
    for k in tl.static_range(COUNT):
        out = out + (tl.where(mask, a[k], b[k]),)
    return out


@triton.jit
def lif_charge(v, x, d, vr, DECAY_INPUT: tl.constexpr):
    """H = V + (X - (V - V_r))·d (decay_input) or V - (V - V_r)·d + X: the reference's operation order."""
    if DECAY_INPUT:
        return v + (x - (v - vr)) * d
    else:
        return v - (v - vr) * d + x


@triton.jit
def lif_reset(h, s, theta, vr, HARD: tl.constexpr):
    """Hard: V = H·(1 - S) + V_r·S; soft: V = H - θ·S."""
    if HARD:
        return h * (1.0 - s) + vr * s
    else:
        return h - theta * s


@triton.jit
def lif_input_grads(gh, prev, x, d, vr, DECAY_INPUT: tl.constexpr, LEARN: tl.constexpr):
    """``(∂L/∂X, (∂L/∂d,) with LEARN else ())`` of a LIF charge from ``gH``: ``∂L/∂X = gH·d`` (decay_input) or
    ``gH``; ``∂L/∂d = gH·(X - (V[t-1] - V_r))`` (decay_input) or ``-gH·(V[t-1] - V_r)``, ``V[t-1] = prev[0]``."""
    if DECAY_INPUT:
        gx = gh * d
    else:
        gx = gh
    if LEARN:
        if DECAY_INPUT:
            gp = (gh * (x - (prev[0] - vr)),)
        else:
            gp = (-(gh * (prev[0] - vr)),)
    else:
        gp = ()
    return gx, gp
