// The PLIF decay gradient of one chunk, shared by the LIF and ALIF kernels.
#pragma once

#include <cstdint>

#include "neuron_math.h"

namespace snn {
namespace cpu {

// Σ_i gH[i]·∂H/∂d for one chunk of one step t, with V[t-1] recomputed exactly as the forward
// computed it: the reset of H[t-1] at its threshold theta_prev(i) (V_th for LIF, V_th + β·B for
// ALIF), or V0 at t = 0 (h_prev == nullptr); STRICT is the neuron's threshold comparison. x is read
// only with decay_input.
template <bool DI, bool HARD, bool STRICT, typename T, typename Theta>
double decay_grad_chunk(const T* h_prev, const T* v0, const T* x, const T* gh, int64_t m, T vr, Theta theta_prev) {
  double acc = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    T vp;
    if (h_prev == nullptr) {
      vp = v0[i];
    } else {
      const T hp = h_prev[i], th = theta_prev(i);
      vp = lif_reset<HARD>(hp, fire<STRICT>(hp - th), th, vr);
    }
    acc += double(gh[i] * lif_dh_dd<DI>(vp, DI ? x[i] : T(0), vr));
  }
  return acc;
}

}  // namespace cpu
}  // namespace snn
