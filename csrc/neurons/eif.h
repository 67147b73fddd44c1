// EIF step (snn/neurons/eif.py).
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
struct EIFStep {
  static constexpr bool HARD = FLAGS & 1u;  // kernel flag: hard_reset
  static constexpr int kStates = 1, kSaved = 2, kParams = 6, kLearnable = 0, kRecord = 0, kFlags = 1;
  T tau, delta, theta_rh, rest, vth, vr;  // tau, delta_T, theta_rh, v_rest, v_threshold, v_reset

  SNN_HD explicit EIFStep(const double* p)
      : tau(T(p[0])), delta(T(p[1])), theta_rh(T(p[2])), rest(T(p[3])), vth(T(p[4])), vr(T(p[5])) {}

  SNN_HD T exponent(T v) const { return (v - theta_rh) / delta; }
  // exp(u) for u <= 80: neuron_math.h's exp_nonpositive, whose polynomial and 2^n scaling hold for arguments up
  // to 88 (~1 ulp); it vectorises, where the library expf in the loop would not (the device uses expf).
  SNN_HD static T exp_capped(T u) { return exp_nonpositive(u); }
  SNN_HD static T capped(T u) { return u > T(80) ? T(80) : u; }

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0];
    h = bounded(v + (x + rest - v + delta * exp_capped(capped(exponent(v)))) / tau);
    theta = vth;
    sv[1] = v;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const { st[0] = lif_reset<HARD>(h, s, theta, vr); }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T h = sv[0] + vth, u = exponent(sv[1]);
    const T gh0 = gs * sg + g[0] * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg);
    const T gh = unbounded(h) ? gh0 : T(0);
    g[0] = gh * (T(1) + ((u <= T(80) ? exp_capped(capped(u)) : T(0)) - T(1)) / tau);
    return gh / tau;
  }
  SNN_HD void restore(const T* sv, T s, T* st) const { st[0] = lif_reset<HARD>(sv[0] + vth, s, vth, vr); }
};

}  // namespace snn
