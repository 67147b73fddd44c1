// QIF step (snn/neurons/qif.py) and the membrane EIF and Izhikevich share with it.
//
//   charge    H = B(V + (X + a0·(V - V_rest)·(V - V_c)) / tau);   θ = V_th;   saved: m = H - θ and V (before)
//   reset     V = S ? V_r : H   (HARD)             V = S ? H - θ : H         (soft)
//   backward  (g = ∂L/∂V[t] on entry, ∂L/∂V[t-1] on exit; σ = σ'(m); H = m + θ)
//             gH = [|H| < L]·(gS·σ + g·(∂V/∂H + keep·∂V/∂S·σ))
//             ∂L/∂X = gH / tau;   g ← gH·(1 + a0·(2V - V_rest - V_c) / tau)
// B(h) clamps to [-L, L], L = 2^100, with no gradient through a clamped value (bounded() in qif.py).
#pragma once

#include "neuron_math.h"

namespace snn {

// B(h): h clamped to [-2^100, 2^100] (NaN passes through, as torch.where does).
template <typename T>
SNN_HD T bounded(T h) {
  const T lim = T(0x1p100);
  return h > lim ? lim : (h < -lim ? -lim : h);
}
// Whether a gradient passes through B at its output h: |h| < 2^100.
template <typename T>
SNN_HD bool unbounded(T h) {
  const T lim = T(0x1p100);
  return h < lim && h > -lim;
}

// The quadratic membrane a0·(V - V_rest)·(V - V_c) and its derivative in V (QIF, Izhikevich).
template <typename T>
struct Quadratic {
  T a0, rest, crit;
  SNN_HD T operator()(T v) const { return a0 * (v - rest) * (v - crit); }
  SNN_HD T dv(T v) const { return a0 * (T(2) * v - rest - crit); }
};

// What QIF, EIF and Izhikevich share: the bounded membrane H = B(V + I / tau) for the model's current I,
// LIF's threshold V_th and reset, and ∂L/∂H through them. Their parameter blocks hold tau at p[0], V_th at
// p[4] and V_reset at p[5] (0 with soft reset); one kernel flag, hard_reset; no learnable parameter.
template <typename T, unsigned FLAGS>
struct BoundedMembrane {
  static constexpr bool HARD = FLAGS & 1u;
  static constexpr int kLearnable = 0, kRecord = 0, kFlags = 1;
  T tau, vth, vr;

  SNN_HD explicit BoundedMembrane(const double* p) : tau(T(p[0])), vth(T(p[4])), vr(T(p[5])) {}

  SNN_HD T membrane(T v, T current) const { return bounded(v + current / tau); }
  SNN_HD void reset(T h, T theta, T s, T* st) const { st[0] = lif_reset<HARD>(h, s, theta, vr); }
  SNN_HD void restore(const T* sv, T s, T* st) const { st[0] = lif_reset<HARD>(sv[0] + vth, s, vth, vr); }
  // ∂L/∂H through the spike and LIF's reset at H: gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ).
  SNN_HD T grad_reset(T h, T s, T sg, T gs, T keep, T gv) const {
    return gs * sg + gv * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg);
  }
  // gH = [|H| < L]·grad_reset at H = m + θ (QIF, EIF), and with the model's own terms `other` (Izhikevich).
  SNN_HD T grad_h(T m, T s, T sg, T gs, T keep, T gv) const {
    const T h = m + vth;
    return unbounded(h) ? grad_reset(h, s, sg, gs, keep, gv) : T(0);
  }
  SNN_HD T grad_h(T m, T s, T sg, T gs, T keep, T gv, T other) const {
    const T h = m + vth;
    return unbounded(h) ? grad_reset(h, s, sg, gs, keep, gv) + other : T(0);
  }
};

template <typename T, unsigned FLAGS>
struct QIFStep : BoundedMembrane<T, FLAGS> {
  static constexpr int kStates = 1, kSaved = 2, kParams = 6;
  Quadratic<T> q;  // p[1..3]: a0, v_rest, v_c

  SNN_HD explicit QIFStep(const double* p) : BoundedMembrane<T, FLAGS>(p), q{T(p[1]), T(p[2]), T(p[3])} {}

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0];
    h = this->membrane(v, x + q(v));
    theta = this->vth;
    sv[1] = v;
  }
  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T gh = this->grad_h(sv[0], s, sg, gs, keep, g[0]);
    g[0] = gh * (T(1) + q.dv(sv[1]) / this->tau);
    return gh / this->tau;
  }
};

}  // namespace snn
