// IF / LIF / PLIF: fused multi-step forward and backward on the CPU.
//
// Must equal the torch reference snn.functional.lif.lif_multistep (spikes bit-identical,
// states and gradients to rounding). With d = decay = 1/tau, V_r = v_reset (0 for soft):
//
//   forward   H[t] = V[t-1] + (X[t] - (V[t-1] - V_r))·d        (decay_input)
//                  = V[t-1] - (V[t-1] - V_r)·d + X[t]          (otherwise)
//             S[t] = Θ(H[t] - V_th)
//             V[t] = S ? V_r : H  (hard)    V[t] = S ? H - V_th : H  (soft)
//   backward  (reverse in t, carry gV = ∂L/∂V[t], starting from ∂L/∂V[T-1])
//             σ    = σ'(H[t] - V_th)
//             gH   = gS[t]·σ + (gV + gVseq[t])·(∂V/∂H + keep·∂V/∂S·σ)   keep = !detach_reset
//             gX[t] = gH·∂H/∂X,  gV ← gH·(1 - d),  gd += gH·∂H/∂d(V[t-1], X[t])
//
// Saved by the forward (only when a gradient is needed): H[t]. S[t] and V[t-1] are
// recomputed from H exactly as the forward computed them.
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/parallel.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cpu {
namespace {

// One time step over a block: charge, fire, reset (V in place); H kept for the caller.
template <bool DI, bool HARD, typename T>
SNN_SIMD_CLONES void forward_step(const T* __restrict x, T* __restrict s, T* __restrict v, T* __restrict h,
                                  int64_t len, T d, T vr, T vth) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = lif_charge<DI>(v[i], x[i], d, vr);
    const T si = fire(hi - vth);
    s[i] = si;
    h[i] = hi;
    v[i] = lif_reset<HARD>(hi, si, vth, vr);
  }
}

// One reverse time step over a block: gH from gS and the carried gV; gX written, gV carried.
template <int K, bool HARD, typename T>
SNN_SIMD_CLONES void backward_step(const T* __restrict h, const T* __restrict gs, T* __restrict gx, T* __restrict gv,
                                   T* __restrict gh, int64_t len, T vth, T vr, T alpha, T keep, T dhdx,
                                   T one_minus_d) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = h[i], m = hi - vth;
    const T s = fire(m), sg = surrogate_grad<K>(m, alpha);
    const T dvdh = lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(hi, vth, vr) * sg;
    const T g = gs[i] * sg + gv[i] * dvdh;
    gx[i] = g * dhdx;
    gh[i] = g;
    gv[i] = g * one_minus_d;
  }
}

template <bool DI, bool HARD, typename T>
void forward_impl(const LifForward<T>& a, const LifParams& p, int threads) {
  const T d = T(p.decay), vr = T(p.v_reset), vth = T(p.v_threshold);
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t, int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    Scratch<T> scratch(2, len);
    T* v = scratch[0];
    T* h = scratch[1];
    copy_n(v, a.v0 + i0, len);
    for (int64_t t = 0; t < a.steps; ++t) {
      const int64_t off = t * a.n + i0;
      forward_step<DI, HARD>(a.x + off, a.spikes + off, v, h, len, d, vr, vth);
      if (a.h_seq) copy_n(a.h_seq + off, h, len);
      if (a.v_seq) copy_n(a.v_seq + off, v, len);
    }
    copy_n(a.v_last + i0, v, len);
  });
}

template <int K, bool DI, bool HARD, typename T>
void backward_impl(const LifBackward<T>& a, const LifParams& p, int threads) {
  const T d = T(p.decay), vr = T(p.v_reset), vth = T(p.v_threshold), alpha = T(p.alpha);
  const T keep = p.detach_reset ? T(0) : T(1);
  const T one_minus_d = T(1) - d, dhdx = lif_dh_dx<DI, T>(d);
  const Blocking plan = plan_blocks(a.n, a.steps, threads);
  std::vector<double> partial(a.grad_decay ? plan.count : 0, 0.0);
  for_each_block(plan, a.n, [&](int64_t b, int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    Scratch<T> scratch(2, len);
    T* gv = scratch[0];
    T* gh = scratch[1];
    if (a.grad_v_last) copy_n(gv, a.grad_v_last + i0, len);
    else std::fill(gv, gv + len, T(0));
    double acc = 0.0;
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t off = t * a.n + i0;
      if (a.grad_v_seq) {
        const T* __restrict gvs = a.grad_v_seq + off;
        for (int64_t i = 0; i < len; ++i) gv[i] += gvs[i];
      }
      backward_step<K, HARD>(a.h_seq + off, a.grad_spikes + off, a.grad_x + off, gv, gh, len, vth, vr, alpha, keep,
                             dhdx, one_minus_d);
      if (a.grad_decay) {  // gd += Σ gH·∂H/∂d, with V[t-1] recomputed from H[t-1] (or V0)
        const T* x = DI ? a.x + off : nullptr;
        for (int64_t i = 0; i < len; ++i) {
          T vp;
          if (t > 0) {
            const T hp = a.h_seq[off - a.n + i];
            vp = lif_reset<HARD>(hp, fire(hp - vth), vth, vr);
          } else {
            vp = a.v0[i0 + i];
          }
          acc += double(gh[i] * lif_dh_dd<DI>(vp, DI ? x[i] : T(0), vr));
        }
      }
    }
    copy_n(a.grad_v0 + i0, gv, len);
    if (a.grad_decay) partial[b] = acc;
  });
  if (a.grad_decay) *a.grad_decay = ordered_sum(partial);
}

}  // namespace

template <typename T>
void lif_forward(const LifForward<T>& a, const LifParams& p, int threads) {
  dispatch_bool(p.decay_input, [&](auto di) {
    dispatch_bool(p.hard_reset, [&](auto hard) { forward_impl<di.value, hard.value>(a, p, threads); });
  });
}

template <typename T>
void lif_backward(const LifBackward<T>& a, const LifParams& p, int threads) {
  dispatch_kind(p.surrogate, [&](auto k) {
    dispatch_bool(p.decay_input, [&](auto di) {
      dispatch_bool(p.hard_reset, [&](auto hard) { backward_impl<k.value, di.value, hard.value>(a, p, threads); });
    });
  });
}

template void lif_forward<float>(const LifForward<float>&, const LifParams&, int);
template void lif_forward<double>(const LifForward<double>&, const LifParams&, int);
template void lif_backward<float>(const LifBackward<float>&, const LifParams&, int);
template void lif_backward<double>(const LifBackward<double>&, const LifParams&, int);

}  // namespace cpu
}  // namespace snn
