// CUBALIF (current-based LIF of Loihi 2, float mode): fused multi-step forward and backward.
//
// Must equal the torch reference snn.functional.cubalif.cubalif_multistep. With
// c_u = 1 - du and c_v = 1 - dv (computed in double, as the reference's python does):
//
//   forward   U[t] = U[t-1]·c_u + X[t]
//             P[t] = V[t-1]·c_v + U[t] + bias         (V before the reset)
//             S[t] = Θ_strict(P[t] - V_th)             (fires on P > V_th, as Lava)
//             V[t] = S ? 0 : P
//   backward  (reverse in t; carries gU = ∂L/∂U[t], gV = ∂L/∂V[t])
//             gV += gVseq[t];  σ = σ'(P - V_th)
//             gS = gS_out[t] - keep·gV·P;   gP = gV·(1 - S) + gS·σ
//             gU += gP;  gX[t] = gU;  gU ← gU·c_u;  gV ← gP·c_v
//
// Saved by the forward (only when a gradient is needed): P[t] alone.
#include "cpu/cpu_kernels.h"
#include "cpu/parallel.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cpu {
namespace {

// One time step over a block: current, voltage, strict fire, reset to 0; U and V in place.
template <typename T>
SNN_SIMD_CLONES void forward_step(const T* __restrict x, T* __restrict s, T* __restrict u, T* __restrict v,
                                  T* __restrict pre, int64_t len, T cu, T cv, T vth, T bias) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    u[i] = u[i] * cu + x[i];
    const T pi = v[i] * cv + u[i] + bias;
    const T si = fire_strict(pi - vth);
    s[i] = si;
    pre[i] = pi;
    v[i] = si != T(0) ? T(0) : pi;
  }
}

// One reverse time step over a block; gU and gV carried in place.
template <int K, typename T>
SNN_SIMD_CLONES void backward_step(const T* __restrict pre, const T* __restrict gs, T* __restrict gx,
                                   T* __restrict gu, T* __restrict gv, int64_t len, T cu, T cv, T vth, T alpha,
                                   T keep) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T pi = pre[i], m = pi - vth;
    const T s = fire_strict(m), sg = surrogate_grad<K>(m, alpha);
    const T gS = gs[i] - keep * gv[i] * pi;
    const T gp = gv[i] * (T(1) - s) + gS * sg;
    const T g = gu[i] + gp;
    gx[i] = g;
    gu[i] = g * cu;
    gv[i] = gp * cv;
  }
}

template <typename T>
void forward_impl(const CubaForward<T>& a, const CubaParams& p, int threads) {
  const T cu = T(p.cu), cv = T(p.cv), vth = T(p.v_threshold), bias = T(p.bias);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* u = a.u_last + i0;  // the states live in the outputs U[T-1], V[T-1]
    T* v = a.v_last + i0;
    Sink<T> s(a.spikes, stream), pre(a.vpre_seq, stream);
    copy_n(u, a.u0 + i0, len);
    copy_n(v, a.v0 + i0, len);
    for (int64_t t = 0; t < a.steps; ++t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        forward_step(a.x + off, s.dst(off), u + c, v + c, pre.dst(off), m, cu, cv, vth, bias);
        s.flush(off, m);
        pre.flush(off, m);
        record(a.v_seq, off, v + c, m, stream);
      });
    }
  });
}

template <int K, typename T>
void backward_impl(const CubaBackward<T>& a, const CubaParams& p, int threads) {
  const T cu = T(p.cu), cv = T(p.cv), vth = T(p.v_threshold), alpha = T(p.alpha);
  const T keep = p.detach_reset ? T(0) : T(1);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* gu = a.grad_u0 + i0;  // the carried gradients live in the outputs ∂L/∂U0, ∂L/∂V0
    T* gv = a.grad_v0 + i0;
    Sink<T> gx(a.grad_x, stream);
    if (a.grad_u_last) copy_n(gu, a.grad_u_last + i0, len);
    else std::fill(gu, gu + len, T(0));
    if (a.grad_v_last) copy_n(gv, a.grad_v_last + i0, len);
    else std::fill(gv, gv + len, T(0));
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        if (a.grad_v_seq) add_into(gv + c, a.grad_v_seq + off, m);
        backward_step<K>(a.vpre_seq + off, a.grad_spikes + off, gx.dst(off), gu + c, gv + c, m, cu, cv, vth, alpha,
                         keep);
        gx.flush(off, m);
      });
    }
  });
}

}  // namespace

template <typename T>
void cubalif_forward(const CubaForward<T>& a, const CubaParams& p, int threads) {
  forward_impl(a, p, threads);
}

template <typename T>
void cubalif_backward(const CubaBackward<T>& a, const CubaParams& p, int threads) {
  dispatch_kind(p.surrogate, [&](auto k) { backward_impl<k.value>(a, p, threads); });
}

template void cubalif_forward<float>(const CubaForward<float>&, const CubaParams&, int);
template void cubalif_forward<double>(const CubaForward<double>&, const CubaParams&, int);
template void cubalif_backward<float>(const CubaBackward<float>&, const CubaParams&, int);
template void cubalif_backward<double>(const CubaBackward<double>&, const CubaParams&, int);

}  // namespace cpu
}  // namespace snn
