// IF / LIF / PLIF step (snn/neurons/lif.py): the functor the generic CPU and CUDA loops run.
//
//   charge    H = V + (X - (V - V_r))·d   (DI)     H = V - (V - V_r)·d + X   (otherwise);   θ = V_th
//   reset     V = S ? V_r : H   (HARD)             V = S ? H - θ : H         (soft)
//   backward  (g = ∂L/∂V[t] on entry, ∂L/∂V[t-1] on exit; σ = σ'(H - θ); H = m + θ from the saved margin)
//             gH = gS·σ + g·(∂V/∂H + keep·∂V/∂S·σ);   ∂L/∂X = gH·∂H/∂X
//             g ← gH·(1 - d);   ∂L/∂d += gH·∂H/∂d
#pragma once

#include "neuron_math.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct LIFStep {
  static constexpr bool HARD = FLAGS & 1u, DI = FLAGS & 2u;  // kernel flags: hard_reset, decay_input
  static constexpr int kStates = 1, kSaved = 1, kParams = 3, kLearnable = 1, kRecord = 0, kFlags = 2;
  T d, vth, vr;  // decay, v_threshold, v_reset (0 with soft reset)

  SNN_HD explicit LIFStep(const double* p) : d(T(p[0])), vth(T(p[1])), vr(T(p[2])) {}

  SNN_HD void charge(T x, T* st, T& h, T& theta, T*) const {
    h = lif_charge<DI>(st[0], x, d, vr);
    theta = vth;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const { st[0] = lif_reset<HARD>(h, s, theta, vr); }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T* prev, T x, T* gp) const {
    const T h = sv[0] + vth;
    const T gh = gs * sg + g[0] * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg);
    return input_grads<LEARN>(gh, g, prev, x, gp);
  }
  // From gH: g[0] ← ∂L/∂V[t-1] = gH·(1 - d), the decay gradient, and the returned ∂L/∂X (shared with ALIF).
  template <bool LEARN>
  SNN_HD T input_grads(T gh, T* g, const T* prev, T x, T* gp) const {
    g[0] = gh * (T(1) - d);
    if (LEARN) gp[0] = gh * lif_dh_dd<DI>(prev[0], x, vr);
    return gh * lif_dh_dx<DI, T>(d);
  }
  SNN_HD void restore(const T* sv, T s, T* st) const { st[0] = lif_reset<HARD>(sv[0] + vth, s, vth, vr); }
};

}  // namespace snn
