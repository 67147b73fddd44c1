// EIF step (snn/neurons/eif.py), on QIF's bounded membrane (neurons/qif.h).
//
//   charge    u = min((V - θ_rh) / Δ_T, 80);   H = B(V + (X + V_rest - V + Δ_T·exp(u)) / tau);   θ = V_th
//             saved: m = H - θ and V (before)
//   reset     V = S ? V_r : H   (HARD)             V = S ? H - θ : H         (soft)
//   backward  (g = ∂L/∂V[t] on entry, ∂L/∂V[t-1] on exit; σ = σ'(m); H = m + θ)
//             gH = [|H| < L]·(gS·σ + g·(∂V/∂H + keep·∂V/∂S·σ))
//             ∂L/∂X = gH / tau;   g ← gH·(1 + ([u <= 80]·exp(u) - 1) / tau)
#pragma once

#include "neurons/qif.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct EIFStep : BoundedMembrane<T, FLAGS> {
  static constexpr int kStates = 1, kSaved = 2, kParams = 6;
  T delta, theta_rh, rest;  // p[1..3]: delta_T, theta_rh, v_rest

  SNN_HD explicit EIFStep(const double* p)
      : BoundedMembrane<T, FLAGS>(p), delta(T(p[1])), theta_rh(T(p[2])), rest(T(p[3])) {}

  SNN_HD T exponent(T v) const { return (v - theta_rh) / delta; }
  // exp(min(u, 80)): exp_vectorised holds up to 88 and vectorises (the device uses expf).
  SNN_HD static T exp_capped(T u) { return exp_vectorised(u > T(80) ? T(80) : u); }

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0];
    h = this->membrane(v, x + rest - v + delta * exp_capped(exponent(v)));
    theta = this->vth;
    sv[1] = v;
  }
  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T u = exponent(sv[1]);
    const T gh = this->grad_h(sv[0], s, sg, gs, keep, g[0]);
    g[0] = gh * (T(1) + ((u <= T(80) ? exp_capped(u) : T(0)) - T(1)) / this->tau);
    return gh / this->tau;
  }
};

}  // namespace snn
