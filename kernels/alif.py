"""Adaptive-threshold LIF (ALIF) multi-step dynamics, forward and backward, as Triton kernels.

Reference (each kernel must equal it): :func:`snn.functional.alif.alif_multistep`. The membrane is
LIF's (see :mod:`snn.kernels.lif`); the threshold adapts with the state ``B`` (``B[-1] = b_init``)::

    H[t]  = V[t-1] + (X[t] - (V[t-1] - V_r))·d      (decay_input; else V[t-1] - (V[t-1] - V_r)·d + X[t])
    θ[t]  = V_th + β·B[t-1]
    S[t]  = Θ(H[t] - θ[t])                           (STRICT: fires only on H[t] > θ[t])
    hard:  V[t] = H[t]·(1 - S[t]) + V_r·S[t];   soft:  V[t] = H[t] - θ[t]·S[t]
    B[t]  = ρ·B[t-1] + S[t]                          (S not detached here, as in the reference)

Backward (reverse time; ``gV``, ``gB`` carry ∂L/∂V[t], ∂L/∂B[t]; ``σ' = σ'(H[t] - θ[t])``; the
reset terms in ``gS`` are dropped with ``detach_reset``)::

    gV += ∂L/∂v_seq[t]
    gS  = ∂L/∂S[t] + gB + (hard: gV·(V_r - H) | soft: -gV·θ)
    gZ  = gS·σ'
    gH  = gZ + (hard: gV·(1 - S) | soft: gV)
    gθ  = -gZ  (soft: - gV·S)
    gB  = ρ·gB + β·gθ;   gX[t] = gH·d or gH;   gd += gH·∂H/∂d;   gV = gH·(1 - d)

The forward with gradients saves ``H`` and ``B`` (input dtype; ``Z = H - θ`` in place of ``H`` for
16-bit inputs, see :mod:`.steps`); spikes and ``V[t-1]`` are recomputed from them. ``params``
(float64) = ``[V_th, V_r, a, c, ρ, β]``.
"""
import triton
import triton.language as tl

from .steps import before, charge, decay_grad_step, fire, load_or_zero, load_saved, program_block, reset, store_saved
from .surrogate import surrogate_grad


@triton.jit
def alif_fwd_kernel(x_ptr, v0_ptr, b0_ptr, decay_ptr, params_ptr, s_ptr, vlast_ptr, blast_ptr, vseq_ptr,
                    h_ptr, bseq_ptr, T, N,
                    CDT: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr, STRICT: tl.constexpr,
                    RECORD_V: tl.constexpr, SAVE: tl.constexpr, SAVED_Z: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    rho = tl.load(params_ptr + 4).to(CDT)
    beta = tl.load(params_ptr + 5).to(CDT)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CDT)
    b = tl.load(b0_ptr + offs, mask=mask, other=0.0).to(CDT)
    xp = x_ptr + offs
    sp = s_ptr + offs
    vp = vseq_ptr + offs
    hp = h_ptr + offs
    bp = bseq_ptr + offs
    # X[t+1] is loaded while step t computes, so one load is always in flight per thread
    x_next = tl.load(xp, mask=before(mask, 0, T, BLOCK), other=0.0)
    for t in range(T):
        x = x_next.to(CDT)
        x_next = tl.load(xp + N, mask=before(mask, t + 1, T, BLOCK), other=0.0)
        h = charge(v, x, d, vr, DECAY_INPUT)
        theta = vth + beta * b
        s = fire(h - theta, STRICT, CDT)
        v = reset(h, s, theta, vr, HARD)
        b = rho * b + s
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE:
            store_saved(hp, h, theta, mask, SAVED_Z)
            tl.store(bp, b.to(bseq_ptr.dtype.element_ty), mask=mask)
            hp += N
            bp += N
        if RECORD_V:
            tl.store(vp, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            vp += N
        xp += N
        sp += N
    tl.store(vlast_ptr + offs, v.to(vlast_ptr.dtype.element_ty), mask=mask)
    tl.store(blast_ptr + offs, b.to(blast_ptr.dtype.element_ty), mask=mask)


@triton.jit
def alif_bwd_kernel(h_ptr, bseq_ptr, s_ptr, x_ptr, v0_ptr, b0_ptr, decay_ptr, params_ptr,
                    gs_ptr, gvseq_ptr, gvlast_ptr, gblast_ptr, gx_ptr, gv0_ptr, gb0_ptr, gd_ptr, T, N, last,
                    CDT: tl.constexpr, KIND: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                    DETACH: tl.constexpr, STRICT: tl.constexpr, HAS_GS: tl.constexpr, HAS_GVSEQ: tl.constexpr,
                    HAS_GVLAST: tl.constexpr, HAS_GBLAST: tl.constexpr, SAVED_Z: tl.constexpr,
                    GRAD_D: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    a = tl.load(params_ptr + 2).to(CDT)
    c = tl.load(params_ptr + 3).to(CDT)
    rho = tl.load(params_ptr + 4).to(CDT)
    beta = tl.load(params_ptr + 5).to(CDT)
    gv = load_or_zero(gvlast_ptr + offs, mask, HAS_GVLAST, CDT, BLOCK)
    gb = load_or_zero(gblast_ptr + offs, mask, HAS_GBLAST, CDT, BLOCK)
    b0 = tl.load(b0_ptr + offs, mask=mask, other=0.0).to(CDT)
    if GRAD_D:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CDT)
        gd = tl.zeros([BLOCK], CDT)
    # ``last`` = (T-1)·N. Carried between steps: H[t], B[t-1] (θ[t] = V_th + β·B[t-1]) and S[t].
    hp = h_ptr + last + offs
    bp = bseq_ptr + last - N + offs       # B[t-1] for t = T-1
    sp = s_ptr + last + offs
    xp = x_ptr + last + offs
    gsp = gs_ptr + last + offs
    gvp = gvseq_ptr + last + offs
    gxp = gx_ptr + last + offs
    m = before(mask, 0, T, BLOCK)
    m1 = before(mask, 1, T, BLOCK)
    bprev = tl.where(m1, tl.load(bp, mask=m1, other=0.0).to(CDT), b0)
    theta = vth + beta * bprev
    h, z, s = load_saved(hp, sp, theta, m, SAVED_Z, STRICT, CDT)
    for i in range(T):
        t = T - 1 - i
        sg = surrogate_grad(z, a, c, KIND)
        if HAS_GVSEQ:
            gv += tl.load(gvp, mask=mask, other=0.0).to(CDT)
        gsum = load_or_zero(gsp, mask, HAS_GS, CDT, BLOCK) + gb
        if not DETACH:
            if HARD:
                gsum += gv * (vr - h)
            else:
                gsum -= gv * theta
        gz = gsum * sg
        if HARD:
            gh = gz + gv * (1.0 - s)
            gtheta = -gz
        else:
            gh = gz + gv
            gtheta = -gz - gv * s
        gb = rho * gb + beta * gtheta
        if DECAY_INPUT:
            gx = gh * d
        else:
            gx = gh
        tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        # H[t-1], B[t-2], S[t-1] for the next step (nothing at t = 0; B[-1] = b_init)
        mprev = before(mask, 0, t, BLOCK)
        mprev2 = before(mask, 1, t, BLOCK)
        bq = tl.where(mprev2, tl.load(bp - N, mask=mprev2, other=0.0).to(CDT), b0)
        thq = vth + beta * bq
        hq, zq, sq = load_saved(hp - N, sp - N, thq, mprev, SAVED_Z, STRICT, CDT)
        if GRAD_D:
            gd += decay_grad_step(gh, hq, sq, thq, vr, v0, xp, mprev, mask, HARD, DECAY_INPUT, CDT)
        gv = gh * (1.0 - d)
        h = hq
        z = zq
        theta = thq
        s = sq
        hp -= N
        bp -= N
        sp -= N
        xp -= N
        gsp -= N
        gvp -= N
        gxp -= N
    tl.store(gv0_ptr + offs, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    tl.store(gb0_ptr + offs, gb.to(gb0_ptr.dtype.element_ty), mask=mask)
    if GRAD_D:
        tl.store(gd_ptr + pid, tl.sum(gd, axis=0).to(gd_ptr.dtype.element_ty))
