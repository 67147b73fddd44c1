// Izhikevich step (snn/neurons/izhikevich.py): QIF's quadratic membrane with an adaptation current W.
//
//   charge    H = B(V + (X + a0·(V - V_rest)·(V - V_c) - W) / tau);   θ = V_th
//             saved: m = H - θ, V and W (before)
//   reset     W ← B(W + (a·(H - V_rest) - W) / tau_w + b·S);   V = S ? V_r : H (HARD), S ? H - θ : H (soft)
//   backward  (gV, gW carried; σ = σ'(m); H = m + θ; W' the new W; the spike in W is never detached)
//             gW' = [|W'| < L]·gW
//             gH = [|H| < L]·(gS·σ + gV·(∂V/∂H + keep·∂V/∂S·σ) + gW'·(a / tau_w + b·σ))
//             ∂L/∂X = gH / tau;   gV ← gH·(1 + a0·(2V - V_rest - V_c) / tau)
//             gW ← gW'·(1 - 1/tau_w) - gH / tau
#pragma once

#include "neurons/qif.h"

namespace snn {

template <typename T, unsigned FLAGS>
struct IzhikevichStep {
  static constexpr bool HARD = FLAGS & 1u;  // kernel flag: hard_reset
  static constexpr int kStates = 2, kSaved = 3, kParams = 10, kLearnable = 0, kRecord = 0, kFlags = 1;
  T tau;
  Quadratic<T> q;
  T vth, vr, a, b, tau_w;  // p[9] (w_rest) is the initial W only

  SNN_HD explicit IzhikevichStep(const double* p)
      : tau(T(p[0])), q{T(p[1]), T(p[2]), T(p[3])}, vth(T(p[4])), vr(T(p[5])), a(T(p[6])), b(T(p[7])),
        tau_w(T(p[8])) {}

  SNN_HD T adapt(T w, T h, T s) const { return bounded(w + (a * (h - q.rest) - w) / tau_w + b * s); }

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0], w = st[1];
    h = bounded(v + (x + q(v) - w) / tau);
    theta = vth;
    sv[1] = v;
    sv[2] = w;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const {
    st[1] = adapt(st[1], h, s);
    st[0] = lif_reset<HARD>(h, s, theta, vr);
  }

  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T h = sv[0] + vth;
    const T gw = unbounded(adapt(sv[2], h, s)) ? g[1] : T(0);
    const T gh0 = gs * sg + g[0] * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg) +
                  gw * (a / tau_w + b * sg);
    const T gh = unbounded(h) ? gh0 : T(0);
    g[0] = gh * (T(1) + q.dv(sv[1]) / tau);
    g[1] = gw * (T(1) - T(1) / tau_w) - gh / tau;
    return gh / tau;
  }
  SNN_HD void restore(const T* sv, T s, T* st) const {
    const T h = sv[0] + vth;
    st[1] = adapt(sv[2], h, s);
    st[0] = lif_reset<HARD>(h, s, vth, vr);
  }
};

}  // namespace snn
