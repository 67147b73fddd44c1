// DSR neuron step (snn/neurons/dsr.py): integrate with retention λ, fire at a fraction α of the threshold,
// subtract the whole threshold. The DSR training method uses its forward only (its gradient is the
// representation mapping's); the backward below is the ordinary surrogate BPTT of these dynamics.
//
//   charge    H = U·λ + X;   θ = α·V_th (the parameter v_fire);   saved: m = H - θ
//   reset     U = S ? H - V_th : H
//   backward  (g = ∂L/∂U[t] on entry, ∂L/∂U[t-1] on exit; σ = σ'(m))
//             gH = gS·σ + g·(1 - keep·V_th·σ);   ∂L/∂X = gH;   g ← gH·λ
#pragma once

#include "neuron_math.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct DSRStep {
  static constexpr int kStates = 1, kSaved = 1, kParams = 3, kLearnable = 0, kRecord = 0, kFlags = 0;
  T lam, v_fire, vth;  // lam, v_fire, v_threshold

  SNN_HD explicit DSRStep(const double* p) : lam(T(p[0])), v_fire(T(p[1])), vth(T(p[2])) {}

  SNN_HD void charge(T x, T* st, T& h, T& theta, T*) const {
    h = st[0] * lam + x;
    theta = v_fire;
  }
  SNN_HD void reset(T h, T, T s, T* st) const { st[0] = lif_reset<false>(h, s, vth, T(0)); }

  template <bool LEARN>
  SNN_HD T backward(const T*, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T gh = gs * sg + g[0] * (lif_dv_dh<false>(s) + keep * lif_dv_ds<false>(T(0), vth, T(0)) * sg);
    g[0] = gh * lam;
    return gh;
  }
};

}  // namespace snn
