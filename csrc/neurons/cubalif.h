// CUBALIF step (snn/neurons/cubalif.py): the current-based LIF of Loihi 2, float mode.
//
//   charge    U = U·c_u + X;   H = V·c_v + U + bias;   θ = V_th   (c_u = 1 - du, c_v = 1 - dv: the parameters)
//   reset     V = S ? 0 : H                             (the spec always fires strictly: H > V_th)
//   backward  (gU, gV carried; σ = σ'(H - θ))
//             gS = ∂L/∂S - keep·gV·H;   gH = gV·(1 - S) + gS·σ
//             gU ← gU + gH;   ∂L/∂X = gU;   gU ← gU·c_u;   gV ← gH·c_v
#pragma once

#include "neuron_math.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct CUBALIFStep {
  static constexpr int kStates = 2, kSaved = 1, kParams = 4, kLearnable = 0, kRecord = 1, kFlags = 0;
  T cu, cv, vth, bias;

  SNN_HD explicit CUBALIFStep(const double* p) : cu(T(p[0])), cv(T(p[1])), vth(T(p[2])), bias(T(p[3])) {}

  SNN_HD void charge(T x, T* st, T& h, T& theta, T*) const {
    st[0] = st[0] * cu + x;
    h = st[1] * cv + st[0] + bias;
    theta = vth;
  }
  SNN_HD void reset(T h, T, T s, T* st) const { st[1] = s != T(0) ? T(0) : h; }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T h = sv[0] + vth;
    const T gh = g[1] * (T(1) - s) + (gs - keep * g[1] * h) * sg;
    const T gu = g[0] + gh;
    g[0] = gu * cu;
    g[1] = gh * cv;
    return gu;
  }
};

}  // namespace snn
