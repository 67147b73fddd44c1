// ALIF (adaptive threshold): fused multi-step forward and backward on the CPU.
//
// Must equal the torch reference snn.functional.alif.alif_multistep. The membrane is LIF's
// (see lif.cpp), the threshold adapts with the carried state B (B[-1] = b_init):
//
//   forward   H[t] = charge(V[t-1], X[t])                  θ[t] = V_th + β·B[t-1]
//             S[t] = Θ(H[t] - θ[t])                   (strict_threshold: H[t] > θ[t])
//             V[t] = S ? V_r : H  (hard)    V[t] = S ? H - θ[t] : H  (soft)
//             B[t] = ρ·B[t-1] + S[t]
//   backward  (reverse in t; carries gV = ∂L/∂V[t], gB = ∂L/∂B[t])
//             σ  = σ'(H - θ),   gV += gVseq[t]
//             gS = gS_out[t] + gB + keep·gV·∂V/∂S      (∂V/∂S = V_r - H hard, -θ soft)
//             gH = gV·∂V/∂H + gS·σ                     (∂V/∂H = 1 - S hard, 1 soft)
//             gθ = -gS·σ - [soft]·gV·S                 (the soft reset subtracts θ)
//             gX[t] = gH·∂H/∂X,  gV ← gH·(1 - d),  gB ← ρ·gB + β·gθ,  gd += gH·∂H/∂d
//
// Saved by the forward (only when a gradient is needed): H[t] and B[t]; S[t], θ[t] and
// V[t-1] are recomputed from them exactly as the forward computed them.
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/parallel.h"
#include "cpu/plif_decay.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cpu {
namespace {

// θ = V_th + β·B, written as the reference writes it (v_threshold + beta * b).
template <typename T>
inline T threshold(T vth, T beta, T b) { return vth + beta * b; }

// One time step over a block: charge, adaptive threshold, fire, reset; V and B in place.
template <bool DI, bool HARD, bool STRICT, typename T>
SNN_SIMD_CLONES void forward_step(const T* __restrict x, T* __restrict s, T* __restrict v, T* __restrict bb,
                                  T* __restrict h, int64_t len, T d, T vr, T vth, T rho, T beta) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = lif_charge<DI>(v[i], x[i], d, vr);
    const T theta = threshold(vth, beta, bb[i]);
    const T si = fire<STRICT>(hi - theta);
    s[i] = si;
    h[i] = hi;
    v[i] = lif_reset<HARD>(hi, si, theta, vr);
    bb[i] = rho * bb[i] + si;
  }
}

// One reverse time step over a block; gV and gB carried in place, gH kept for the decay gradient.
template <int K, bool HARD, bool STRICT, typename T>
SNN_SIMD_CLONES void backward_step(const T* __restrict h, const T* __restrict bprev, const T* __restrict gs,
                                   T* __restrict gx, T* __restrict gv, T* __restrict gb, T* __restrict gh,
                                   int64_t len, T vth, T vr, T alpha, T keep, T rho, T beta, T dhdx,
                                   T one_minus_d) {
  const T soft = HARD ? T(0) : T(1);
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T hi = h[i], theta = threshold(vth, beta, bprev[i]), m = hi - theta;
    const T s = fire<STRICT>(m), sg = surrogate_grad<K>(m, alpha);
    const T gS = gs[i] + gb[i] + keep * gv[i] * lif_dv_ds<HARD>(hi, theta, vr);
    const T gm = gS * sg;
    const T g = gv[i] * lif_dv_dh<HARD>(s) + gm;
    const T gtheta = -gm - soft * gv[i] * s;
    gx[i] = g * dhdx;
    gh[i] = g;
    gv[i] = g * one_minus_d;
    gb[i] = rho * gb[i] + beta * gtheta;
  }
}

template <bool DI, bool HARD, bool STRICT, typename T>
void forward_impl(const AlifForward<T>& a, const AlifParams& p, int threads) {
  const T d = T(p.lif.decay), vr = T(p.lif.v_reset), vth = T(p.lif.v_threshold);
  const T rho = T(p.rho), beta = T(p.beta);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* v = a.v_last + i0;  // the states live in the outputs V[T-1], B[T-1]
    T* bb = a.b_last + i0;
    Sink<T> s(a.spikes, stream), h(a.h_seq, stream);
    copy_n(v, a.v0 + i0, len);
    copy_n(bb, a.b0 + i0, len);
    for (int64_t t = 0; t < a.steps; ++t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        forward_step<DI, HARD, STRICT>(a.x + off, s.dst(off), v + c, bb + c, h.dst(off), m, d, vr, vth, rho, beta);
        s.flush(off, m);
        h.flush(off, m);
        record(a.b_seq, off, bb + c, m, stream);
        record(a.v_seq, off, v + c, m, stream);
      });
    }
  });
}

template <int K, bool DI, bool HARD, bool STRICT, typename T>
void backward_impl(const AlifBackward<T>& a, const AlifParams& p, int threads) {
  const T d = T(p.lif.decay), vr = T(p.lif.v_reset), vth = T(p.lif.v_threshold), alpha = T(p.lif.alpha);
  const T rho = T(p.rho), beta = T(p.beta);
  const T keep = p.lif.detach_reset ? T(0) : T(1);
  const T one_minus_d = T(1) - d, dhdx = lif_dh_dx<DI, T>(d);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  std::vector<double> partial(a.grad_decay ? chunk_columns(a.n) : 0, 0.0);  // per chunk column
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* gv = a.grad_v0 + i0;  // the carried ∂L/∂V, ∂L/∂B live in the outputs ∂L/∂V0, ∂L/∂B0
    T* gb = a.grad_b0 + i0;
    Sink<T> gx(a.grad_x, stream);
    alignas(64) T gh[kChunk];
    if (a.grad_v_last) copy_n(gv, a.grad_v_last + i0, len);
    else std::fill(gv, gv + len, T(0));
    if (a.grad_b_last) copy_n(gb, a.grad_b_last + i0, len);
    else std::fill(gb, gb + len, T(0));
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        if (a.grad_v_seq) add_into(gv + c, a.grad_v_seq + off, m);
        const T* bprev = t > 0 ? a.b_seq + off - a.n : a.b0 + i0 + c;
        backward_step<K, HARD, STRICT>(a.h_seq + off, bprev, a.grad_spikes + off, gx.dst(off), gv + c, gb + c, gh,
                                       m, vth, vr, alpha, keep, rho, beta, dhdx, one_minus_d);
        gx.flush(off, m);
        if (a.grad_decay) {  // V[t-1] is the reset of H[t-1] at θ(B[t-2]) (B[-1] = b0)
          const T* h_prev = t > 0 ? a.h_seq + off - a.n : nullptr;
          const T* b_prev2 = t > 1 ? a.b_seq + off - 2 * a.n : a.b0 + i0 + c;
          const T* x = DI ? a.x + off : nullptr;
          auto theta_prev = [&](int64_t i) { return threshold(vth, beta, b_prev2[i]); };
          partial[(i0 + c) / kChunk] += decay_grad_chunk<DI, HARD, STRICT>(h_prev, a.v0 + i0 + c, x, gh, m, vr, theta_prev);
        }
      });
    }
  });
  if (a.grad_decay) *a.grad_decay = ordered_sum(partial);
}

}  // namespace

template <typename T>
void alif_forward(const AlifForward<T>& a, const AlifParams& p, int threads) {
  dispatch_bool(p.lif.decay_input, [&](auto di) {
    dispatch_bool(p.lif.hard_reset, [&](auto hard) {
      dispatch_bool(p.lif.strict_threshold,
                    [&](auto strict) { forward_impl<di.value, hard.value, strict.value>(a, p, threads); });
    });
  });
}

template <typename T>
void alif_backward(const AlifBackward<T>& a, const AlifParams& p, int threads) {
  dispatch_kind(p.lif.surrogate, [&](auto k) {
    dispatch_bool(p.lif.decay_input, [&](auto di) {
      dispatch_bool(p.lif.hard_reset, [&](auto hard) {
        dispatch_bool(p.lif.strict_threshold, [&](auto strict) {
          backward_impl<k.value, di.value, hard.value, strict.value>(a, p, threads);
        });
      });
    });
  });
}

template void alif_forward<float>(const AlifForward<float>&, const AlifParams&, int);
template void alif_forward<double>(const AlifForward<double>&, const AlifParams&, int);
template void alif_backward<float>(const AlifBackward<float>&, const AlifParams&, int);
template void alif_backward<double>(const AlifBackward<double>&, const AlifParams&, int);

}  // namespace cpu
}  // namespace snn
