// Parameters and buffer sets of the fused multi-step neuron kernels, shared by the
// C++ (csrc/cpu) and CUDA (csrc/cuda) implementations. Plain structs over raw pointers:
// no torch types, so the CUDA sources compile with nvcc alone.
//
// Layout: every sequence is [steps, n] contiguous (time-major, neurons flattened);
// every state is [n]. Pointers documented "optional" may be null.
#pragma once

#include <cstdint>

namespace snn {

// IF / LIF / PLIF (snn/functional/lif.py). v_reset is 0 for soft reset (hard_reset=false).
struct LifParams {
  double decay = 0.5;
  double v_threshold = 1.0;
  double v_reset = 0.0;
  bool hard_reset = true;
  bool decay_input = true;
  bool detach_reset = false;
  bool strict_threshold = false;  // fire on H > V_th (else H >= V_th)
  int surrogate = 0;   // snn/surrogate.py kind
  double alpha = 4.0;  // surrogate sharpness
};

// ALIF (snn/functional/alif.py): LIF membrane + threshold V_th + beta·B.
struct AlifParams {
  LifParams lif;
  double rho = 0.9;
  double beta = 0.1;
};

// CUBALIF (snn/functional/cubalif.py). cu = 1 - du and cv = 1 - dv are computed in double
// by the caller, exactly as the reference's python expressions (1.0 - du) do.
struct CubaParams {
  double cu = 0.5;
  double cv = 0.5;
  double v_threshold = 1.0;
  double bias = 0.0;
  bool detach_reset = false;
  int surrogate = 0;
  double alpha = 4.0;
};

template <typename T>
struct LifForward {
  const T* x;      // [steps, n]
  const T* v0;     // [n]
  T* spikes;       // [steps, n]
  T* v_last;       // [n]
  T* h_seq;        // [steps, n] optional: saved for the backward
  T* v_seq;        // [steps, n] optional: record_v
  int64_t steps, n;
};

template <typename T>
struct LifBackward {
  const T* grad_spikes;  // [steps, n]
  const T* grad_v_last;  // [n] optional
  const T* grad_v_seq;   // [steps, n] optional
  const T* h_seq;        // [steps, n] from the forward
  const T* x;            // [steps, n] optional: only for the decay gradient with decay_input
  const T* v0;           // [n]
  T* grad_x;             // [steps, n]
  T* grad_v0;            // [n]
  double* grad_decay;    // [1] optional: PLIF, the gradient of the decay d = 1/tau
  int64_t steps, n;
};

template <typename T>
struct AlifForward {
  const T* x;
  const T* v0;
  const T* b0;
  T* spikes;
  T* v_last;
  T* b_last;
  T* h_seq;  // optional (saved)
  T* b_seq;  // optional (saved): B after each step
  T* v_seq;  // optional (record_v)
  int64_t steps, n;
};

template <typename T>
struct AlifBackward {
  const T* grad_spikes;
  const T* grad_v_last;  // optional
  const T* grad_b_last;  // optional
  const T* grad_v_seq;   // optional
  const T* h_seq;
  const T* b_seq;
  const T* x;  // optional (decay gradient with decay_input)
  const T* v0;
  const T* b0;
  T* grad_x;
  T* grad_v0;
  T* grad_b0;
  double* grad_decay;  // optional
  int64_t steps, n;
};

template <typename T>
struct CubaForward {
  const T* x;
  const T* u0;
  const T* v0;
  T* spikes;
  T* u_last;
  T* v_last;
  T* vpre_seq;  // optional (saved): V before reset, the only thing the backward needs
  T* v_seq;     // optional (record_v): V after reset
  int64_t steps, n;
};

template <typename T>
struct CubaBackward {
  const T* grad_spikes;
  const T* grad_u_last;  // optional
  const T* grad_v_last;  // optional
  const T* grad_v_seq;   // optional
  const T* vpre_seq;
  T* grad_x;
  T* grad_u0;
  T* grad_v0;
  int64_t steps, n;
};

}  // namespace snn
