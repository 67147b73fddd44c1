// Izhikevich step (snn/neurons/izhikevich.py): QIF's quadratic, bounded membrane (neurons/qif.h) with an
// adaptation current W.
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
struct IzhikevichStep : BoundedMembrane<T, FLAGS> {
  static constexpr int kStates = 2, kSaved = 3, kParams = 10;
  Quadratic<T> q;  // p[1..3]: a0, v_rest, v_c
  T a, b, tau_w;   // p[6..8]; p[9] (w_rest) is the initial W only

  SNN_HD explicit IzhikevichStep(const double* p)
      : BoundedMembrane<T, FLAGS>(p), q{T(p[1]), T(p[2]), T(p[3])}, a(T(p[6])), b(T(p[7])), tau_w(T(p[8])) {}

  SNN_HD T adapt(T w, T h, T s) const { return bounded(w + (a * (h - q.rest) - w) / tau_w + b * s); }

  SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const {
    const T v = st[0], w = st[1];
    h = this->membrane(v, x + q(v) - w);
    theta = this->vth;
    sv[1] = v;
    sv[2] = w;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const {
    st[1] = adapt(st[1], h, s);
    BoundedMembrane<T, FLAGS>::reset(h, theta, s, st);
  }
  template <bool LEARN>
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T gw = unbounded(adapt(sv[2], sv[0] + this->vth, s)) ? g[1] : T(0);
    const T gh = this->grad_h(sv[0], s, sg, gs, keep, g[0], gw * (a / tau_w + b * sg));
    g[0] = gh * (T(1) + q.dv(sv[1]) / this->tau);
    g[1] = gw * (T(1) - T(1) / tau_w) - gh / this->tau;
    return gh / this->tau;
  }
  SNN_HD void restore(const T* sv, T s, T* st) const {
    st[1] = adapt(sv[2], sv[0] + this->vth, s);
    BoundedMembrane<T, FLAGS>::restore(sv, s, st);
  }
};

}  // namespace snn
