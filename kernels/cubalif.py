"""Current-based LIF of Loihi 2 (CUBALIF, float mode), forward and backward, as Triton kernels.

Reference (each kernel must equal it): :func:`snn.functional.cubalif.cubalif_multistep`::

    U[t] = U[t-1]·(1 - du) + X[t]
    H[t] = V[t-1]·(1 - dv) + U[t] + bias            (the membrane before the reset)
    S[t] = Θ_strict(H[t] - V_th)                     (fires on H > V_th, as Lava does)
    V[t] = H[t]·(1 - S[t])

Backward (reverse time; ``gU``, ``gV`` carry ∂L/∂U[t] from step t+1 and ∂L/∂V[t];
``σ' = σ'(H[t] - V_th)``; ``detach_reset`` drops the ``-gV·H`` term)::

    gV += ∂L/∂v_seq[t]
    gH  = gV·(1 - S) + (gS - gV·H)·σ'
    gU += gH;   gX[t] = gU;   gU = gU·(1 - du);   gV = gH·(1 - dv)

The forward with gradients saves only ``H`` (input dtype; ``Z = H - V_th`` for 16-bit inputs, see
:mod:`.steps`); spikes are recomputed from it. ``params`` (float64) = ``[1 - du, 1 - dv, bias, V_th, a, c]``
(``1 - du`` formed in double precision on the host, as the reference does).
"""
import triton
import triton.language as tl

from .steps import before, fire, grad_h, load_or_zero, load_saved, program_block, store_saved
from .surrogate import surrogate_grad


@triton.jit
def cubalif_fwd_kernel(x_ptr, u0_ptr, v0_ptr, params_ptr, s_ptr, ulast_ptr, vlast_ptr, vseq_ptr, h_ptr, T, N,
                       CDT: tl.constexpr, RECORD_V: tl.constexpr, SAVE_H: tl.constexpr, SAVED_Z: tl.constexpr,
                       BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    cdu = tl.load(params_ptr).to(CDT)
    cdv = tl.load(params_ptr + 1).to(CDT)
    bias = tl.load(params_ptr + 2).to(CDT)
    vth = tl.load(params_ptr + 3).to(CDT)
    u = tl.load(u0_ptr + offs, mask=mask, other=0.0).to(CDT)
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
        u = u * cdu + x
        h = v * cdv + u + bias
        s = fire(h - vth, True, CDT)
        v = h * (1.0 - s)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            store_saved(hp, h, vth, mask, SAVED_Z)
            hp += N
        if RECORD_V:
            tl.store(vp, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            vp += N
        xp += N
        sp += N
    tl.store(ulast_ptr + offs, u.to(ulast_ptr.dtype.element_ty), mask=mask)
    tl.store(vlast_ptr + offs, v.to(vlast_ptr.dtype.element_ty), mask=mask)


@triton.jit
def cubalif_bwd_kernel(h_ptr, s_ptr, params_ptr, gs_ptr, gvseq_ptr, gulast_ptr, gvlast_ptr,
                       gx_ptr, gu0_ptr, gv0_ptr, T, N, last,
                       CDT: tl.constexpr, KIND: tl.constexpr, DETACH: tl.constexpr, HAS_GS: tl.constexpr,
                       HAS_GVSEQ: tl.constexpr, HAS_GULAST: tl.constexpr, HAS_GVLAST: tl.constexpr,
                       SAVED_Z: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    cdu = tl.load(params_ptr).to(CDT)
    cdv = tl.load(params_ptr + 1).to(CDT)
    vth = tl.load(params_ptr + 3).to(CDT)
    a = tl.load(params_ptr + 4).to(CDT)
    c = tl.load(params_ptr + 5).to(CDT)
    gu = load_or_zero(gulast_ptr + offs, mask, HAS_GULAST, CDT, BLOCK)
    gv = load_or_zero(gvlast_ptr + offs, mask, HAS_GVLAST, CDT, BLOCK)
    # ``last`` = (T-1)·N, passed from the host so it is 64-bit when it must be.
    hp = h_ptr + last + offs
    sp = s_ptr + last + offs
    gsp = gs_ptr + last + offs
    gvp = gvseq_ptr + last + offs
    gxp = gx_ptr + last + offs
    for _i in range(T):
        h, z, s = load_saved(hp, sp, vth, mask, SAVED_Z, True, CDT)
        sg = surrogate_grad(z, a, c, KIND)
        if HAS_GVSEQ:
            gv += tl.load(gvp, mask=mask, other=0.0).to(CDT)
        gs = load_or_zero(gsp, mask, HAS_GS, CDT, BLOCK)
        gh = grad_h(gv, gs, s, h, sg, vth, 0.0, True, DETACH)  # the hard reset to V_r = 0: gS + gV·(0 - H)
        gu += gh
        tl.store(gxp, gu.to(gx_ptr.dtype.element_ty), mask=mask)
        gu = gu * cdu
        gv = gh * cdv
        hp -= N
        sp -= N
        gsp -= N
        gvp -= N
        gxp -= N
    tl.store(gu0_ptr + offs, gu.to(gu0_ptr.dtype.element_ty), mask=mask)
    tl.store(gv0_ptr + offs, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
