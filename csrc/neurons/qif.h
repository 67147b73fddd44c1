// QIF step (snn/neurons/qif.py) and the pieces EIF and Izhikevich share with it.
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

template <typename T, unsigned FLAGS>
struct QIFStep {
  static constexpr bool HARD = FLAGS & 1u;  // kernel flag: hard_reset
  static constexpr int kStates = 1, kSaved = 2, kParams = 6, kLearnable = 0, kRecord = 0, kFlags = 1;
  T tau;
  Quadratic<T> q;
  T vth, vr;  // v_threshold, v_reset (0 with soft reset)

  SNN_HD explicit QIFStep(const double* p)
      : tau(T(p[0])), q{T(p[1]), T(p[2]), T(p[3])}, vth(T(p[4])), vr(T(p[5])) {}

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0];
    h = bounded(v + (x + q(v)) / tau);
    theta = vth;
    sv[1] = v;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const { st[0] = lif_reset<HARD>(h, s, theta, vr); }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T h = sv[0] + vth;
    const T gh0 = gs * sg + g[0] * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg);
    const T gh = unbounded(h) ? gh0 : T(0);
    g[0] = gh * (T(1) + q.dv(sv[1]) / tau);
    return gh / tau;
  }
  SNN_HD void restore(const T* sv, T s, T* st) const { st[0] = lif_reset<HARD>(sv[0] + vth, s, vth, vr); }
};

}  // namespace snn
