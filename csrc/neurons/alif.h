// ALIF step (snn/neurons/alif.py): LIF's membrane with the threshold θ = V_th + β·B.
//
//   charge    H = LIF charge of V;   θ = V_th + β·B;   saved: m = H - θ and B (the state before)
//   reset     V = S ? V_r : H  (HARD)    V = S ? H - θ : H  (soft);    B ← ρ·B + S
//   backward  (gV, gB carried; σ = σ'(H - θ))
//             gS = ∂L/∂S + gB + keep·gV·∂V/∂S      (∂V/∂S = V_r - H hard, -θ soft)
//             gH = gV·∂V/∂H + gS·σ;   gθ = -gS·σ - [soft]·gV·S
//             ∂L/∂X = gH·∂H/∂X;   gV ← gH·(1 - d);   gB ← ρ·gB + β·gθ;   ∂L/∂d += gH·∂H/∂d
#pragma once

#include "neuron_math.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct ALIFStep {
  static constexpr bool HARD = FLAGS & 1u, DI = FLAGS & 2u;  // kernel flags: hard_reset, decay_input
  static constexpr int kStates = 2, kSaved = 2, kParams = 5, kLearnable = 1, kRecord = 0, kFlags = 2;
  T d, vth, vr, rho, beta;

  SNN_HD explicit ALIFStep(const double* p)
      : d(T(p[0])), vth(T(p[1])), vr(T(p[2])), rho(T(p[3])), beta(T(p[4])) {}

  SNN_HD T threshold(T b) const { return vth + beta * b; }

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    h = lif_charge<DI>(st[0], x, d, vr);
    theta = threshold(st[1]);
    sv[1] = st[1];
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const {
    st[0] = lif_reset<HARD>(h, s, theta, vr);
    st[1] = rho * st[1] + s;
  }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T* prev, T x, T* gp) const {
    const T theta = threshold(sv[1]), h = sv[0] + theta;
    const T gm = (gs + g[1] + keep * g[0] * lif_dv_ds<HARD>(h, theta, vr)) * sg;
    const T gh = g[0] * lif_dv_dh<HARD>(s) + gm;
    const T gtheta = -gm - (HARD ? T(0) : g[0] * s);
    g[0] = gh * (T(1) - d);
    g[1] = rho * g[1] + beta * gtheta;
    if (LEARN) gp[0] = gh * lif_dh_dd<DI>(prev[0], x, vr);
    return gh * lif_dh_dx<DI, T>(d);
  }
  SNN_HD void restore(const T* sv, T s, T* st) const {
    const T theta = threshold(sv[1]);
    st[0] = lif_reset<HARD>(sv[0] + theta, s, theta, vr);
    st[1] = rho * sv[1] + s;
  }
};

}  // namespace snn
