"""IF / LIF / PLIF multi-step dynamics, forward and backward, as Triton kernels.

Reference (each kernel must equal it): :func:`snn.functional.lif.lif_multistep`. With ``d = 1/tau``
(``d = 0``, ``decay_input=False`` is IF; ``d = sigmoid(w)`` a tensor is PLIF)::

    decay_input=True :  H[t] = V[t-1] + (X[t] - (V[t-1] - V_r))·d
    decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_r)·d + X[t]
    S[t] = Θ(H[t] - V_th)                          (Θ(z) = 1 if z >= 0)
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
keeping the state in registers. The forward with gradients saves ``H`` (input dtype); spikes and
``V[t-1]`` are recomputed from it. For 16-bit inputs (``SAVED_Z``) it saves ``Z = H - V_th``
instead, which 16 bits hold precisely near the threshold where σ' is steep (H would carry an
absolute error of ~|H|·2⁻⁸ in bfloat16 into σ'), and the spikes are read from the output. The
decay gradient is one partial sum per program, summed on the host (deterministic).
``params`` (float64) = ``[V_th, V_r, a, c]``, the surrogate constants ``a, c`` as in
:mod:`snn.kernels.surrogate`; ``decay`` points at one element.
"""
import triton
import triton.language as tl

from .surrogate import surrogate_grad


@triton.jit
def lif_fwd_kernel(x_ptr, v0_ptr, decay_ptr, params_ptr, s_ptr, vlast_ptr, vseq_ptr, h_ptr, T, N,
                   CDT: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                   RECORD_V: tl.constexpr, SAVE_H: tl.constexpr, SAVED_Z: tl.constexpr,
                   BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CDT)
    xp = x_ptr + offs
    sp = s_ptr + offs
    vp = vseq_ptr + offs
    hp = h_ptr + offs
    # X[t+1] is loaded while step t computes, so one load is always in flight per thread
    zero = tl.zeros([BLOCK], tl.int32)
    x_next = tl.load(xp, mask=mask & ((zero + T) > 0), other=0.0)
    for t in range(T):
        x = x_next.to(CDT)
        x_next = tl.load(xp + N, mask=mask & ((zero + t + 1) < T), other=0.0)
        if DECAY_INPUT:
            h = v + (x - (v - vr)) * d
        else:
            h = v - (v - vr) * d + x
        s = ((h - vth) >= 0).to(CDT)
        if HARD:
            v = h * (1.0 - s) + vr * s
        else:
            v = h - vth * s
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            if SAVED_Z:
                tl.store(hp, (h - vth).to(h_ptr.dtype.element_ty), mask=mask)
            else:
                tl.store(hp, h.to(h_ptr.dtype.element_ty), mask=mask)
            hp += N
        if RECORD_V:
            tl.store(vp, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            vp += N
        xp += N
        sp += N
    tl.store(vlast_ptr + offs, v.to(vlast_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _decay_grad_step(gh, hq, sq, theta, vr, v0, xp, mprev, mask, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                     CDT: tl.constexpr):
    """gH·∂H/∂d of one step, with V[t-1] recomputed as the reset of H[t-1] (threshold ``theta``), or v_init at
    t = 0: ``gH·(X - (V[t-1] - V_r))`` (decay_input) or ``-gH·(V[t-1] - V_r)``. Shared by LIF and ALIF."""
    if HARD:
        vq = hq * (1.0 - sq) + vr * sq
    else:
        vq = hq - theta * sq
    vprev = tl.where(mprev, vq, v0)
    if DECAY_INPUT:
        x = tl.load(xp, mask=mask, other=0.0).to(CDT)
        return tl.where(mask, gh * (x - (vprev - vr)), 0.0)
    return tl.where(mask, -(gh * (vprev - vr)), 0.0)


@triton.jit
def _unpack(r, theta, SAVED_Z: tl.constexpr):
    """(H, Z = H - θ) from a saved value: H itself, or Z for 16-bit inputs."""
    if SAVED_Z:
        return r + theta, r
    else:
        return r, r - theta


@triton.jit
def lif_bwd_kernel(h_ptr, s_ptr, x_ptr, v0_ptr, decay_ptr, params_ptr, gs_ptr, gvseq_ptr, gvlast_ptr,
                   gx_ptr, gv0_ptr, gd_ptr, T, N, last,
                   CDT: tl.constexpr, KIND: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
                   DETACH: tl.constexpr, HAS_GS: tl.constexpr, HAS_GVSEQ: tl.constexpr,
                   HAS_GVLAST: tl.constexpr, SAVED_Z: tl.constexpr, GRAD_D: tl.constexpr,
                   BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    d = tl.load(decay_ptr).to(CDT)
    vth = tl.load(params_ptr).to(CDT)
    vr = tl.load(params_ptr + 1).to(CDT)
    a = tl.load(params_ptr + 2).to(CDT)
    c = tl.load(params_ptr + 3).to(CDT)
    if HAS_GVLAST:
        gv = tl.load(gvlast_ptr + offs, mask=mask, other=0.0).to(CDT)
    else:
        gv = tl.zeros([BLOCK], CDT)
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
    zero = tl.zeros([BLOCK], tl.int32)
    m = mask & ((zero + T) > 0)
    h, z = _unpack(tl.load(hp, mask=m, other=0.0).to(CDT), vth, SAVED_Z)
    if SAVED_Z:
        s = tl.load(sp, mask=m, other=0.0).to(CDT)
    else:
        s = (z >= 0).to(CDT)
    for i in range(T):
        t = T - 1 - i
        sg = surrogate_grad(z, a, c, KIND)
        if HAS_GVSEQ:
            gv += tl.load(gvp, mask=mask, other=0.0).to(CDT)
        if HAS_GS:
            gs = tl.load(gsp, mask=mask, other=0.0).to(CDT)
        else:
            gs = tl.zeros([BLOCK], CDT)
        if HARD:
            if DETACH:
                gh = gv * (1.0 - s) + gs * sg
            else:
                gh = gv * (1.0 - s) + (gs + gv * (vr - h)) * sg
        else:
            if DETACH:
                gh = gv + gs * sg
            else:
                gh = gv + (gs - gv * vth) * sg
        if DECAY_INPUT:
            gx = gh * d
        else:
            gx = gh
        tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        # H[t-1], S[t-1] for the next step (nothing at t = 0)
        mprev = mask & ((zero + t) > 0)
        hq, zq = _unpack(tl.load(hp - N, mask=mprev, other=0.0).to(CDT), vth, SAVED_Z)
        if SAVED_Z:
            sq = tl.load(sp - N, mask=mprev, other=0.0).to(CDT)
        else:
            sq = (zq >= 0).to(CDT)
        if GRAD_D:
            gd += _decay_grad_step(gh, hq, sq, vth, vr, v0, xp, mprev, mask, HARD, DECAY_INPUT, CDT)
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
