"""The generic multi-step skeleton: one forward and one backward Triton kernel that run any neuron step
(:class:`snn.neurons.spec.TritonStep`), equal to the torch reference scan (:mod:`snn.functional.scan`).

One program owns ``BLOCK`` neurons and loops over time with the state in registers (tuples of blocks)::

    forward   h, θ, st, extra = CHARGE(X[t], st);  m = h - θ;  S[t] = Θ(m) (STRICT: m > 0);
              st = RESET(h, θ, S, st);  saved[t] = (m, *extra) when a gradient is needed
    backward  reverse in t; g = ∂L/∂st carried (from ∂L/∂st_last), g[RECORD] += ∂L/∂v_seq[t];
              s = Θ(m) (or the forward's spike when the saved values are 16-bit), σ = σ'(m);
              ∂L/∂X[t], g, gp = BACKWARD(saved[t], s, σ, ∂L/∂S[t], g, prev, X[t]);
              prev = RESTORE(saved[t-1]) (or the initial state at t = 0) only with LEARN

The step functions are ``tl.constexpr`` arguments, so each spec, flag set and surrogate gets its own
compiled kernel. The backward reads the surrogate's constants ``(a, c)`` after the parameter block
(:meth:`snn.surrogate.Surrogate.kernel_constants`, float64, cast in the kernel). Layout: ``x`` is ``[T, N]``
contiguous; states are stacked ``[NS, N]``, saved values
``[NV, T, N]`` (``TN = T·N`` apart, passed from the host so that it is 64-bit when it must be); the
parameter block is float64 ``[NP]``. The charge and reset keep the reference's operation order and compile
without FMA contraction (``enable_fp_fusion=False``), so spikes are bit-identical to it. For 16-bit inputs
the saved values are stored in the input dtype: ``m`` is then exact near the threshold, where σ' is steep,
and the spikes are read back from the forward's output. Learnable-parameter gradients are one partial sum
per program and parameter (``[NL, programs]``), summed on the host (deterministic).
"""
import triton
import triton.language as tl

from .steps import (add_at, add_rows, before, fire, load_or_zero, load_params, load_rows, load_rows_if,
                    program_block, store_rows, where_rows, zeros_rows)
from .surrogate import surrogate_grad


@triton.jit
def forward_kernel(x_ptr, st0_ptr, p_ptr, s_ptr, stlast_ptr, vseq_ptr, sv_ptr, T, N, TN,
                   CHARGE: tl.constexpr, RESET: tl.constexpr, NS: tl.constexpr, NV: tl.constexpr,
                   NP: tl.constexpr, RECORD: tl.constexpr, FLAGS: tl.constexpr, STRICT: tl.constexpr,
                   CDT: tl.constexpr, RECORD_V: tl.constexpr, SAVE: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    p = load_params(p_ptr, NP, CDT)
    st = load_rows(st0_ptr + offs, N, mask, NS, CDT)
    xp = x_ptr + offs
    sp = s_ptr + offs
    vp = vseq_ptr + offs
    svp = sv_ptr + offs
    # X[t+1] is loaded while step t computes, so one load is always in flight per thread
    x_next = tl.load(xp, mask=before(mask, 0, T, BLOCK), other=0.0)
    for t in range(T):
        x = x_next.to(CDT)
        x_next = tl.load(xp + N, mask=before(mask, t + 1, T, BLOCK), other=0.0)
        h, theta, st, extra = CHARGE(x, st, p, FLAGS)
        m = h - theta
        s = fire(m, STRICT, CDT)
        st = RESET(h, theta, s, st, p, FLAGS)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE:
            store_rows(svp, TN, (m,) + extra, mask, NV)
            svp += N
        if RECORD_V:
            tl.store(vp, st[RECORD].to(vseq_ptr.dtype.element_ty), mask=mask)
            vp += N
        xp += N
        sp += N
    store_rows(stlast_ptr + offs, N, st, mask, NS)


@triton.jit
def backward_kernel(sv_ptr, s_ptr, x_ptr, st0_ptr, p_ptr, gs_ptr, gvseq_ptr, glast_ptr, gx_ptr, g0_ptr, gp_ptr,
                    T, N, TN, last,
                    BACKWARD: tl.constexpr, RESTORE: tl.constexpr, NS: tl.constexpr, NV: tl.constexpr,
                    NP: tl.constexpr, NL: tl.constexpr, RECORD: tl.constexpr, FLAGS: tl.constexpr,
                    STRICT: tl.constexpr, KEEP: tl.constexpr, KIND: tl.constexpr, CDT: tl.constexpr,
                    HAS_GS: tl.constexpr, HAS_GVSEQ: tl.constexpr, GLAST: tl.constexpr, SAVED_LOW: tl.constexpr,
                    LEARN: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask = program_block(N, BLOCK)
    p = load_params(p_ptr, NP, CDT)
    a = tl.load(p_ptr + NP).to(CDT)  # the surrogate's constants follow the parameter block
    c = tl.load(p_ptr + NP + 1).to(CDT)
    g = load_rows_if(glast_ptr + offs, N, mask, GLAST, NS, CDT, BLOCK)
    if LEARN:
        st0 = load_rows(st0_ptr + offs, N, mask, NS, CDT)
        gp = zeros_rows(NL, CDT, BLOCK)
    # ``last`` = (T-1)·N: every pointer starts at step T-1 and walks back
    svp = sv_ptr + last + offs
    sp = s_ptr + last + offs
    xp = x_ptr + last + offs
    gsp = gs_ptr + last + offs
    gvp = gvseq_ptr + last + offs
    gxp = gx_ptr + last + offs
    for i in range(T):
        t = T - 1 - i
        w = load_rows(svp, TN, mask, NV, CDT)
        if SAVED_LOW:
            s = tl.load(sp, mask=mask, other=0.0).to(CDT)
        else:
            s = fire(w[0], STRICT, CDT)
        sg = surrogate_grad(w[0], a, c, KIND)
        if HAS_GVSEQ:
            g = add_at(g, RECORD, tl.load(gvp, mask=mask, other=0.0).to(CDT), NS)
        gs = load_or_zero(gsp, mask, HAS_GS, CDT, BLOCK)
        if LEARN:
            mprev = before(mask, 0, t, BLOCK)
            wp = load_rows(svp - N, TN, mprev, NV, CDT)
            if SAVED_LOW:
                sprev = tl.load(sp - N, mask=mprev, other=0.0).to(CDT)
            else:
                sprev = fire(wp[0], STRICT, CDT)
            prev = where_rows(mprev, RESTORE(wp, sprev, p, FLAGS), st0, NS)
            x = tl.load(xp, mask=mask, other=0.0).to(CDT)
            gx, g, gpi = BACKWARD(w, s, sg, gs, g, prev, x, p, FLAGS, KEEP, LEARN)
            gp = add_rows(gp, gpi, mask, NL)
        else:  # prev and x are not read without LEARN
            gx, g, gpi = BACKWARD(w, s, sg, gs, g, g, gs, p, FLAGS, KEEP, LEARN)
        tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        svp -= N
        sp -= N
        xp -= N
        gsp -= N
        gvp -= N
        gxp -= N
    store_rows(g0_ptr + offs, N, g, mask, NS)
    if LEARN:
        nprog = tl.num_programs(0)
        for k in tl.static_range(NL):
            tl.store(gp_ptr + k * nprog + pid, tl.sum(gp[k], axis=0).to(gp_ptr.dtype.element_ty))
