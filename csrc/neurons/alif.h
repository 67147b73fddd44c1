// ALIF step (snn/neurons/alif.py): LIF's membrane (LIFStep) with the threshold θ = V_th + β·B.
//
//   charge    H = LIF charge of V;   θ = V_th + β·B;   saved: m = H - θ and B (the state before)
//   reset     V = S ? V_r : H  (HARD)    V = S ? H - θ : H  (soft);    B ← ρ·B + S
//   backward  (gV, gB carried; σ = σ'(H - θ))
//             gS = ∂L/∂S + gB + keep·gV·∂V/∂S      (∂V/∂S = V_r - H hard, -θ soft)
//             gH = gV·∂V/∂H + gS·σ;   gθ = -gS·σ - [soft]·gV·S
//             ∂L/∂X = gH·∂H/∂X;   gV ← gH·(1 - d);   gB ← ρ·gB + β·gθ;   ∂L/∂d += gH·∂H/∂d
#pragma once

#include "neurons/lif.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct ALIFStep : LIFStep<T, FLAGS> {
  using Base = LIFStep<T, FLAGS>;
  using Base::d, Base::vth, Base::vr, Base::HARD, Base::DI;
  static constexpr int kStates = 2, kSaved = 2, kParams = 5, kLearnable = 1, kRecord = 0, kFlags = 2;
  T rho, beta;  // parameters 3, 4 (after LIF's decay, v_threshold, v_reset)

  SNN_HD explicit ALIFStep(const double* p) : Base(p), rho(T(p[3])), beta(T(p[4])) {}

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
    g[1] = rho * g[1] + beta * gtheta;
    return Base::template input_grads<LEARN>(gh, g, prev, x, gp);
  }
  SNN_HD void restore(const T* sv, T s, T* st) const {
    const T theta = threshold(sv[1]);
    st[0] = lif_reset<HARD>(sv[0] + theta, s, theta, vr);
    st[1] = rho * sv[1] + s;
  }
};

}  // namespace snn
