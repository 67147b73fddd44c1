"""Per-element pieces of one neuron step, shared by the family kernels (:mod:`.lif`, :mod:`.alif`,
:mod:`.cubalif`) as Triton device functions (inlined where they are called).

Each is one line of the torch reference with the reference's operation order, so every kernel that
uses them keeps its spikes bit-identical to :mod:`snn.functional`::

    charge      decay_input: H = V + (X - (V - V_r))·d      else: H = V - (V - V_r)·d + X
    fire        S = Θ(H - θ): 1 where H - θ >= 0 (STRICT: > 0)
    reset       hard: V = H·(1 - S) + V_r·S                 soft: V = H - θ·S
    grad_h      ∂L/∂H of a LIF-style reset (CUBALIF is the hard reset with V_r = 0):
                hard: gV·(1 - S) + (gS + gV·(V_r - H))·σ'   soft: gV + (gS - gV·θ)·σ'
                (detach_reset drops the gV terms inside the brackets)

What the forward saves for the backward: ``H``, or for 16-bit inputs ``Z = H - θ`` (16 bits hold Z
precisely near the threshold, where σ' is steep; H would carry an absolute error of ~|H|·2⁻⁸ in
bfloat16 into σ') with the spikes read back from the output.
"""
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
def load_or_zero(p, mask, PRESENT: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr):
    """The block at ``p`` in the compute dtype, or zeros when the tensor is absent (an unused gradient)."""
    if PRESENT:
        return tl.load(p, mask=mask, other=0.0).to(CDT)
    else:
        return tl.zeros([BLOCK], CDT)


@triton.jit
def charge(v, x, d, vr, DECAY_INPUT: tl.constexpr):
    if DECAY_INPUT:
        return v + (x - (v - vr)) * d
    else:
        return v - (v - vr) * d + x


@triton.jit
def fire(z, STRICT: tl.constexpr, CDT: tl.constexpr):
    """S = Θ(Z), Z = H - θ: 1 where Z >= 0, or where Z > 0 with ``STRICT``, in the compute dtype."""
    if STRICT:
        return (z > 0).to(CDT)
    else:
        return (z >= 0).to(CDT)


@triton.jit
def reset(h, s, theta, vr, HARD: tl.constexpr):
    if HARD:
        return h * (1.0 - s) + vr * s
    else:
        return h - theta * s


@triton.jit
def grad_h(gv, gs, s, h, sg, theta, vr, HARD: tl.constexpr, DETACH: tl.constexpr):
    if HARD:
        if DETACH:
            return gv * (1.0 - s) + gs * sg
        else:
            return gv * (1.0 - s) + (gs + gv * (vr - h)) * sg
    else:
        if DETACH:
            return gv + gs * sg
        else:
            return gv + (gs - gv * theta) * sg


@triton.jit
def store_saved(hp, h, theta, mask, SAVED_Z: tl.constexpr):
    """Save H (or Z = H - θ for 16-bit inputs) of one step at ``hp``."""
    if SAVED_Z:
        tl.store(hp, (h - theta).to(hp.dtype.element_ty), mask=mask)
    else:
        tl.store(hp, h.to(hp.dtype.element_ty), mask=mask)


@triton.jit
def load_saved(hp, sp, theta, mask, SAVED_Z: tl.constexpr, STRICT: tl.constexpr, CDT: tl.constexpr):
    """``(H, Z = H - θ, S)`` of one step from what the forward saved; S = Θ(Z) (Θ_strict: Z > 0 with
    ``STRICT``), or the output spikes at ``sp`` when Z was saved."""
    r = tl.load(hp, mask=mask, other=0.0).to(CDT)
    if SAVED_Z:
        return r + theta, r, tl.load(sp, mask=mask, other=0.0).to(CDT)
    else:
        return r, r - theta, fire(r - theta, STRICT, CDT)


@triton.jit
def decay_grad_step(gh, hq, sq, theta, vr, v0, xp, mprev, mask, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                    CDT: tl.constexpr):
    """gH·∂H/∂d of one step, with V[t-1] recomputed as the reset of H[t-1] (threshold ``theta``), or v_init at
    t = 0: ``gH·(X - (V[t-1] - V_r))`` (decay_input) or ``-gH·(V[t-1] - V_r)``. Shared by LIF and ALIF."""
    vprev = tl.where(mprev, reset(hq, sq, theta, vr, HARD), v0)
    if DECAY_INPUT:
        x = tl.load(xp, mask=mask, other=0.0).to(CDT)
        return tl.where(mask, gh * (x - (vprev - vr)), 0.0)
    return tl.where(mask, -(gh * (vprev - vr)), 0.0)
