// What the generic multi-step loops (cpu/scan.h, cuda/scan.cuh) receive, for any neuron step functor
// (csrc/neurons/*.h, contract in snn/neurons/spec.py). Plain structs over raw pointers: no torch types, so
// the CUDA sources compile with nvcc alone.
//
// Layout: every sequence is [steps, n] contiguous (time-major, neurons flattened); every state is [n].
// Pointers documented "optional" may be null.
#pragma once

#include <cstdint>

namespace snn {

constexpr int kMaxStates = 4;     // state variables of a neuron, at most
constexpr int kMaxSaved = 4;      // values saved per step, at most
constexpr int kMaxParams = 16;    // kernel parameters, at most

// The parameter block of a step functor (float64, in the spec's kernel_params order), passed by value.
struct ParamBlock {
  double v[kMaxParams] = {};
};

// Options every neuron shares: the step's compile-time flags (bit i = the spec's kernel_flags[i]), the threshold
// comparison (fire on m > 0 when strict, else m >= 0), detach_reset, and the surrogate: its kind and constants
// (a, c) (snn/surrogate.py: Surrogate.kind, kernel_constants).
struct StepOptions {
  unsigned flags = 0;
  bool strict = false;
  bool detach_reset = false;
  int surrogate = 0;
  double a = 1.0, c = 0.0;
};

template <typename T>
struct ForwardArgs {
  const T* x = nullptr;                     // [steps, n]
  const T* state0[kMaxStates] = {};         // [n] each
  T* spikes = nullptr;                      // [steps, n]
  T* state_last[kMaxStates] = {};           // [n] each; the running state lives here
  T* saved[kMaxSaved] = {};                 // [steps, n] each, optional (all or none): for the backward
  T* v_seq = nullptr;                       // [steps, n] optional: the recorded state after each step
  ParamBlock params;
  int64_t steps = 0, n = 0;
};

template <typename T>
struct BackwardArgs {
  const T* grad_spikes = nullptr;           // [steps, n]
  const T* grad_last[kMaxStates] = {};      // [n] each, optional
  const T* grad_v_seq = nullptr;            // [steps, n] optional
  const T* saved[kMaxSaved] = {};           // [steps, n] each, from the forward
  const T* x = nullptr;                     // [steps, n] optional: read only for parameter gradients
  const T* state0[kMaxStates] = {};         // [n] each: the state before step 0
  T* grad_x = nullptr;                      // [steps, n]
  T* grad_state0[kMaxStates] = {};          // [n] each; the carried gradient lives here
  double* grad_params = nullptr;            // [kLearnable] optional: parameter gradients wanted
  ParamBlock params;
  int64_t steps = 0, n = 0;
};

}  // namespace snn
