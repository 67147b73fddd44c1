"""IF / LIF / PLIF multi-step dynamics, forward and backward, as Triton kernels.

Reference (each kernel must equal it): :func:`snn.functional.lif.lif_multistep`. With ``d = 1/tau``
(``d = 0``, ``decay_input=False`` is IF; ``d = sigmoid(w)`` a tensor is PLIF)::

    decay_input=True :  H[t] = V[t-1] + (X[t] - (V[t-1] - V_r))·d
    decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_r)·d + X[t]
    S[t] = Θ(H[t] - V_th)                          (Θ(z) = 1 if z >= 0; STRICT: if z > 0)
    hard reset:  V[t] = H[t]·(1 - S[t]) + V_r·S[t]
    soft reset:  V[t] = H[t] - V_th·S[t]             (V_r = 0 in the charge)

The charge and reset are written with the reference's operation order (and compiled without FMA
contraction), so the spikes are bit-identical to it in float32 and float64; 16-bit inputs run with
a float32 state and equal the float32 reference on the same values.

Backward (reverse time; ``gV`` carries ∂L/∂V[t], ``σ' = σ'(H[t] - V_th)``; ``detach_reset`` drops
the reset's σ' terms)::

    gV      += ∂L/∂v_seq[t]                  (+ ∂L/∂v_last at t = T-1)
    hard:  gH = gV·(1 - S) + (gS + gV·(V_r - H))·σ'      (detach: gS·σ')
    soft:  gH = gV + (gS - gV·V_th)·σ'                   (detach: gS·σ')
    gX[t] = gH·d  (decay_input)  or  gH
    gd   += gH·(X[t] - (V[t-1] - V_r))  (decay_input)  or  -gH·(V[t-1] - V_r)
    gV    = gH·(1 - d)                   → ∂L/∂v_init after t = 0

Layout: ``x`` is ``[T, N]`` contiguous; one program owns ``BLOCK`` neurons and loops over time,
keeping the state in registers. The forward with gradients saves ``H`` (input dtype; ``Z = H - V_th``
for 16-bit inputs, see :mod:`.steps`); spikes and ``V[t-1]`` are recomputed from it. The decay
gradient is one partial sum per program, summed on the host (deterministic).
``params`` (float64) = ``[V_th, V_r, a, c]``, the surrogate constants ``a, c`` as in
:mod:`snn.kernels.surrogate`; ``decay`` points at one element.
"""
import triton
import triton.language as tl

from .steps import (before, charge, decay_grad_step, fire, grad_h, load_or_zero, load_saved, program_block, reset,
                    store_saved)
from .surrogate import surrogate_grad


@triton.jit
def lif_fwd_kernel(x_ptr, v0_ptr, decay_ptr, params_ptr, s_ptr, vlast_ptr, vseq_ptr, h_ptr, T, N,
                   CDT: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr, STRICT: tl.constexpr,
                   RECORD_V: tl.constexpr, SAVE_H: tl.constexpr, SAVED_Z: tl.constexpr,
                   BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CDT)
    xp = x_ptr + offs
    sp = s_ptr + offs
    vp = vseq_ptr + offs
    hp = h_ptr + offs
    # X[t+1] is loaded while step t computes, so one load is always in flight per thread
    x_next = tl.load(xp, mask=before(mask, 0, T, BLOCK), other=0.0)
    for t in range(T):
        x = x_next.to(CDT)
        x_next = tl.load(xp + N, mask=before(mask, t + 1, T, BLOCK), other=0.0)
        h = charge(v, x, d, vr, DECAY_INPUT)
        s = fire(h - vth, STRICT, CDT)
        v = reset(h, s, vth, vr, HARD)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            store_saved(hp, h, vth, mask, SAVED_Z)
            hp += N
        if RECORD_V:
            tl.store(vp, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            vp += N
        xp += N
        sp += N
    tl.store(vlast_ptr + offs, v.to(vlast_ptr.dtype.element_ty), mask=mask)


@triton.jit
def lif_bwd_kernel(h_ptr, s_ptr, x_ptr, v0_ptr, decay_ptr, params_ptr, gs_ptr, gvseq_ptr, gvlast_ptr,
                   gx_ptr, gv0_ptr, gd_ptr, T, N, last,
                   CDT: tl.constexpr, KIND: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                   DETACH: tl.constexpr, STRICT: tl.constexpr, HAS_GS: tl.constexpr, HAS_GVSEQ: tl.constexpr,
                   HAS_GVLAST: tl.constexpr, SAVED_Z: tl.constexpr, GRAD_D: tl.constexpr,
                   BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    a = tl.load(params_ptr + 2).to(CDT)
    c = tl.load(params_ptr + 3).to(CDT)
    gv = load_or_zero(gvlast_ptr + offs, mask, HAS_GVLAST, CDT, BLOCK)
    if GRAD_D:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CDT)
        gd = tl.zeros([BLOCK], CDT)
    # ``last`` = (T-1)·N, passed from the host so it is 64-bit when it must be. H[t] and S[t] are
    # carried from one step to the next: each step loads H[t-1] once (V[t-1] comes from it for PLIF).
    hp = h_ptr + last + offs
    sp = s_ptr + last + offs
    xp = x_ptr + last + offs
    gsp = gs_ptr + last + offs
    gvp = gvseq_ptr + last + offs
    gxp = gx_ptr + last + offs
    m = before(mask, 0, T, BLOCK)
    h, z, s = load_saved(hp, sp, vth, m, SAVED_Z, STRICT, CDT)
    for i in range(T):
        t = T - 1 - i
        sg = surrogate_grad(z, a, c, KIND)
        if HAS_GVSEQ:
            gv += tl.load(gvp, mask=mask, other=0.0).to(CDT)
        gs = load_or_zero(gsp, mask, HAS_GS, CDT, BLOCK)
        gh = grad_h(gv, gs, s, h, sg, vth, vr, HARD, DETACH)
        if DECAY_INPUT:
            gx = gh * d
        else:
            gx = gh
        tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        # H[t-1], S[t-1] for the next step (nothing at t = 0)
        mprev = before(mask, 0, t, BLOCK)
        hq, zq, sq = load_saved(hp - N, sp - N, vth, mprev, SAVED_Z, STRICT, CDT)
        if GRAD_D:
            gd += decay_grad_step(gh, hq, sq, vth, vr, v0, xp, mprev, mask, HARD, DECAY_INPUT, CDT)
        gv = gh * (1.0 - d)
        h = hq
        z = zq
        s = sq
        hp -= N
        sp -= N
        xp -= N
        gsp -= N
        gvp -= N
        gxp -= N
    tl.store(gv0_ptr + offs, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    if GRAD_D:
        tl.store(gd_ptr + pid, tl.sum(gd, axis=0).to(gd_ptr.dtype.element_ty))
