// Per-element neuron math shared by the C++ (csrc/cpu) and CUDA (csrc/cuda) kernels.
//
// Every function here is the scalar form of one line of the torch reference
// (snn/neurons/*.py: charge, reset) with the *same floating-point
// operation order*, so that spikes computed by the kernels are bit-identical to the
// reference's (a membrane exactly at threshold fires in both or in neither).
// Never build these files with -ffast-math or with FMA contraction
// (-ffp-contract=off for g++, --fmad=false for nvcc): a fused multiply-add rounds
// once where the reference rounds twice.
//
// Surrogate kinds and their constants (a, c) are declared in snn/surrogate.py (Surrogate.kind,
// Surrogate.kernel_constants).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SNN_HD __host__ __device__ __forceinline__
#else
#define SNN_HD inline
#endif

namespace snn {

// ---- surrogate kinds (snn/surrogate.py: KINDS) --------------------------------------------
enum SurrogateKind : int { kSigmoid = 0, kATan = 1, kFastSigmoid = 2, kTriangle = 3, kErf = 4 };
constexpr int kNumSurrogates = 5;

// ---- charge -------------------------------------------------------------------------------
// decay_input=True : H = V + (X - (V - V_r))·d        (lif_charge, same op order)
// decay_input=False: H = V - (V - V_r)·d + X
template <bool DECAY_INPUT, typename T>
SNN_HD T lif_charge(T v, T x, T d, T vr) {
  if (DECAY_INPUT) return v + (x - (v - vr)) * d;
  return v - (v - vr) * d + x;
}
// dH/dV = 1 - d for both forms; dH/dX and dH/dd:
template <bool DECAY_INPUT, typename T>
SNN_HD T lif_dh_dx(T d) { return DECAY_INPUT ? d : T(1); }
template <bool DECAY_INPUT, typename T>
SNN_HD T lif_dh_dd(T v_prev, T x, T vr) {
  if (DECAY_INPUT) return x - (v_prev - vr);
  return -(v_prev - vr);
}

// ---- fire ----------------------------------------------------------------------------------
// S = Θ(m) with m = H - V_th: 1 where m >= 0; with STRICT (a neuron's strict_threshold, and
// always for CUBALIF / Loihi) Θ_strict: 1 where m > 0 (snn.surrogate: surrogate(m, strict=True)).
template <bool STRICT = false, typename T>
SNN_HD T fire(T m) {
  if (STRICT) return m > T(0) ? T(1) : T(0);
  return m >= T(0) ? T(1) : T(0);
}

// ---- reset ---------------------------------------------------------------------------------
// hard: V = H·(1 - S) + V_r·S = S ? V_r : H     soft: V = H - θ·S = S ? H - θ : H
// (identical values to the reference's blend for S in {0, 1}, up to the sign of a zero).
template <bool HARD, typename T>
SNN_HD T lif_reset(T h, T s, T theta, T vr) {
  if (HARD) return s != T(0) ? vr : h;
  return s != T(0) ? h - theta : h;
}
// dV/dH through the direct path, and dV/dS through the reset (0 when detach_reset).
template <bool HARD, typename T>
SNN_HD T lif_dv_dh(T s) { return HARD ? T(1) - s : T(1); }
template <bool HARD, typename T>
SNN_HD T lif_dv_ds(T h, T theta, T vr) { return HARD ? vr - h : -theta; }

// ---- exp -----------------------------------------------------------------------------------
// exp(x) for float x <= 88 as a branch-free polynomial that the compiler vectorises (the library expf in a
// loop does not): Cephes' polynomial (~2 ulp) with the rounding to n = round(x/ln 2) done by the 1.5·2^23
// "magic number", so that it is plain float/int adds and shifts. Arguments below -87.3 are clamped (result
// ~1e-38 instead of a denormal or 0: an absolute error under 1e-37); above 88, 2^n overflows the exponent
// field, so callers keep x <= 88 (the surrogates pass x <= 0, EIF caps its exponent at 80). The double
// version (gradcheck) and the device version are the accurate library exp.
SNN_HD float exp_vectorised(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  constexpr float kMagic = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer in the low bits
  x = x < -87.3f ? -87.3f : x;  // (NaN passes through: NaN in, NaN out, as torch)
  const float tm = x * 1.44269504088896341f + kMagic;
  const float fn = tm - kMagic;  // n as a float
  int32_t tm_bits, magic_bits;
  std::memcpy(&tm_bits, &tm, sizeof(tm_bits));
  std::memcpy(&magic_bits, &kMagic, sizeof(magic_bits));
  const int32_t n = tm_bits - magic_bits;
  float r = x - fn * 0.693359375f;  // x - n·ln 2 in two parts (Cody-Waite)
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (n + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
#endif
}
SNN_HD double exp_vectorised(double x) { return exp(x); }

// ---- surrogate derivatives σ'(x) from (kind, a, c) (snn/surrogate.py: kernel_constants) ----------
template <int KIND, typename T>
SNN_HD T surrogate_grad(T x, T a, T c) {
  if (KIND == kSigmoid) {  // a·s·(1 - s), s = sigmoid(ax); = a·e/(1 + e)² with e = exp(-a|x|)
    const T ax = a * x;
    const T e = exp_vectorised(ax < T(0) ? ax : -ax);
    const T d = T(1) + e;
    return a * e / (d * d);
  } else if (KIND == kATan) {  // c / (1 + (ax)²)
    const T ax = a * x;
    return c / (T(1) + ax * ax);
  } else if (KIND == kFastSigmoid) {  // c / (1 + a|x|)²
    const T d = T(1) + a * (x < T(0) ? -x : x);
    return c / (d * d);
  } else if (KIND == kTriangle) {  // a·max(0, 1 - a|x|)
    const T r = T(1) - a * (x < T(0) ? -x : x);
    return a * (r > T(0) ? r : T(0));
  } else {  // kErf: c·exp(-(ax)²)
    const T ax = a * x;
    return c * exp_vectorised(-(ax * ax));
  }
}

}  // namespace snn
