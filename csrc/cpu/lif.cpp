// IF / LIF / PLIF: fused multi-step forward and backward on the CPU.
//
// Must equal the torch reference snn.functional.lif.lif_multistep (spikes bit-identical,
// states and gradients to rounding). With d = decay = 1/tau, V_r = v_reset (0 for soft):
//
//   forward   H[t] = V[t-1] + (X[t] - (V[t-1] - V_r))·d        (decay_input)
//                  = V[t-1] - (V[t-1] - V_r)·d + X[t]          (otherwise)
//             S[t] = Θ(H[t] - V_th)          (strict_threshold: H[t] > V_th)
//             V[t] = S ? V_r : H  (hard)    V[t] = S ? H - V_th : H  (soft)
//   backward  (reverse in t, carry gV = ∂L/∂V[t], starting from ∂L/∂V[T-1])
//             σ    = σ'(H[t] - V_th)
//             gH   = gS[t]·σ + (gV + gVseq[t])·(∂V/∂H + keep·∂V/∂S·σ)   keep = !detach_reset
//             gX[t] = gH·∂H/∂X,  gV ← gH·(1 - d),  gd += gH·∂H/∂d(V[t-1], X[t])
//
// Saved by the forward (only when a gradient is needed): H[t]. S[t] and V[t-1] are
// recomputed from H exactly as the forward computed them.
#include <vector>

#include "cpu/chunks.h"
#include "cpu/cpu_kernels.h"
#include "cpu/parallel.h"
#include "cpu/plif_decay.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cpu {
namespace {

// One time step over a block: charge, fire, reset (V in place); H kept for the caller.
template <bool DI, bool HARD, bool STRICT, typename T>
SNN_SIMD_CLONES void forward_step(const T* __restrict x, T* __restrict s, T* __restrict v, T* __restrict h,
                                  int64_t len, T d, T vr, T vth) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = lif_charge<DI>(v[i], x[i], d, vr);
    const T si = fire<STRICT>(hi - vth);
    s[i] = si;
    h[i] = hi;
    v[i] = lif_reset<HARD>(hi, si, vth, vr);
  }
}

// One reverse time step over a block: gH from gS and the carried gV; gX written, gV carried.
template <int K, bool HARD, bool STRICT, typename T>
SNN_SIMD_CLONES void backward_step(const T* __restrict h, const T* __restrict gs, T* __restrict gx, T* __restrict gv,
                                   T* __restrict gh, int64_t len, T vth, T vr, T alpha, T keep, T dhdx,
                                   T one_minus_d) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = h[i], m = hi - vth;
    const T s = fire<STRICT>(m), sg = surrogate_grad<K>(m, alpha);
    const T dvdh = lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(hi, vth, vr) * sg;
    const T g = gs[i] * sg + gv[i] * dvdh;
    gx[i] = g * dhdx;
    gh[i] = g;
    gv[i] = g * one_minus_d;
  }
}

template <bool DI, bool HARD, bool STRICT, typename T>
void forward_impl(const LifForward<T>& a, const LifParams& p, int threads) {
  const T d = T(p.decay), vr = T(p.v_reset), vth = T(p.v_threshold);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* v = a.v_last + i0;  // the state lives in the output V[T-1]
    Sink<T> s(a.spikes, stream), h(a.h_seq, stream);
    copy_n(v, a.v0 + i0, len);
    for (int64_t t = 0; t < a.steps; ++t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        forward_step<DI, HARD, STRICT>(a.x + off, s.dst(off), v + c, h.dst(off), m, d, vr, vth);
        s.flush(off, m);
        h.flush(off, m);
        record(a.v_seq, off, v + c, m, stream);
      });
    }
  });
}

template <int K, bool DI, bool HARD, bool STRICT, typename T>
void backward_impl(const LifBackward<T>& a, const LifParams& p, int threads) {
  const T d = T(p.decay), vr = T(p.v_reset), vth = T(p.v_threshold), alpha = T(p.alpha);
  const T keep = p.detach_reset ? T(0) : T(1);
  const T one_minus_d = T(1) - d, dhdx = lif_dh_dx<DI, T>(d);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  std::vector<double> partial(a.grad_decay ? chunk_columns(a.n) : 0, 0.0);  // per chunk column
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* gv = a.grad_v0 + i0;  // the carried ∂L/∂V lives in the output ∂L/∂V0
    Sink<T> gx(a.grad_x, stream);
    alignas(64) T gh[kChunk];
    if (a.grad_v_last) copy_n(gv, a.grad_v_last + i0, len);
    else std::fill(gv, gv + len, T(0));
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        if (a.grad_v_seq) add_into(gv + c, a.grad_v_seq + off, m);
        backward_step<K, HARD, STRICT>(a.h_seq + off, a.grad_spikes + off, gx.dst(off), gv + c, gh, m, vth, vr,
                                       alpha, keep, dhdx, one_minus_d);
        gx.flush(off, m);
        if (a.grad_decay) {
          const T* h_prev = t > 0 ? a.h_seq + off - a.n : nullptr;
          const T* x = DI ? a.x + off : nullptr;
          partial[(i0 + c) / kChunk] +=
              decay_grad_chunk<DI, HARD, STRICT>(h_prev, a.v0 + i0 + c, x, gh, m, vr, [&](int64_t) { return vth; });
        }
      });
    }
  });
  if (a.grad_decay) *a.grad_decay = ordered_sum(partial);
}

}  // namespace

template <typename T>
void lif_forward(const LifForward<T>& a, const LifParams& p, int threads) {
  dispatch_bool(p.decay_input, [&](auto di) {
    dispatch_bool(p.hard_reset, [&](auto hard) {
      dispatch_bool(p.strict_threshold,
                    [&](auto strict) { forward_impl<di.value, hard.value, strict.value>(a, p, threads); });
    });
  });
}

template <typename T>
void lif_backward(const LifBackward<T>& a, const LifParams& p, int threads) {
  dispatch_kind(p.surrogate, [&](auto k) {
    dispatch_bool(p.decay_input, [&](auto di) {
      dispatch_bool(p.hard_reset, [&](auto hard) {
        dispatch_bool(p.strict_threshold, [&](auto strict) {
          backward_impl<k.value, di.value, hard.value, strict.value>(a, p, threads);
        });
      });
    });
  });
}

template void lif_forward<float>(const LifForward<float>&, const LifParams&, int);
template void lif_forward<double>(const LifForward<double>&, const LifParams&, int);
template void lif_backward<float>(const LifBackward<float>&, const LifParams&, int);
template void lif_backward<double>(const LifBackward<double>&, const LifParams&, int);

}  // namespace cpu
}  // namespace snn
