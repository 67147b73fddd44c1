// The generic multi-step loops on CUDA, for any neuron step functor F (csrc/neurons/*.h): the same equations
// and operation order as the CPU loops (cpu/scan.h), which both must equal the torch reference scan
// (snn/functional/scan.py). One thread per neuron runs the whole time loop with the state (forward) or the
// carried gradients (backward) in registers; reads and writes of step t are coalesced across a warp. Parameter
// gradients are reduced per block in a fixed tree order, then over blocks in index order (deterministic).
// Built with --fmad=false so that no multiply-add is fused where the reference rounds twice.
#pragma once

#include "cuda/common.cuh"
#include "cuda/launchers.h"
#include "dispatch.h"
#include "neuron_math.h"
#include "scan_args.h"

namespace snn {
namespace cuda {

template <typename Fn, bool STRICT, typename T>
__global__ void forward_kernel(ForwardArgs<T> a) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  const Fn f(a.params.v);
  T st[NS];
  for (int k = 0; k < NS; ++k) st[k] = a.state0[k][i];
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t j = t * a.n + i;
    T h, theta, w[NV];
    f.charge(a.x[j], st, h, theta, w);
    w[0] = h - theta;
    const T s = fire<STRICT>(w[0]);
    f.reset(h, theta, s, st);
    a.spikes[j] = s;
    if (a.saved[0])
      for (int k = 0; k < NV; ++k) a.saved[k][j] = w[k];
    if (a.v_seq) a.v_seq[j] = st[Fn::kRecord];
  }
  for (int k = 0; k < NS; ++k) a.state_last[k][i] = st[k];
}

template <typename Fn, int K, bool STRICT, bool LEARN, typename T>
__global__ void backward_kernel(BackwardArgs<T> a, T sa, T sc, T keep, double* partial) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved, NL = Fn::kLearnable > 0 ? Fn::kLearnable : 1;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const Fn f(a.params.v);
  double acc[NL] = {};
  if (i < a.n) {
    T g[NS];
    for (int k = 0; k < NS; ++k) g[k] = a.grad_last[k] ? a.grad_last[k][i] : T(0);
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t j = t * a.n + i;
      if (a.grad_v_seq) g[Fn::kRecord] += a.grad_v_seq[j];
      T w[NV], prev[NS], gp[NL];
      for (int k = 0; k < NV; ++k) w[k] = a.saved[k][j];
      if constexpr (LEARN) {
        if (t > 0) {
          T wp[NV];
          for (int k = 0; k < NV; ++k) wp[k] = a.saved[k][j - a.n];
          f.restore(wp, fire<STRICT>(wp[0]), prev);
        } else {
          for (int k = 0; k < NS; ++k) prev[k] = a.state0[k][i];
        }
      }
      a.grad_x[j] = f.template backward<LEARN>(w, fire<STRICT>(w[0]), surrogate_grad<K>(w[0], sa, sc),
                                               a.grad_spikes[j], keep, g, prev, LEARN ? a.x[j] : T(0), gp);
      if (LEARN)
        for (int k = 0; k < Fn::kLearnable; ++k) acc[k] += double(gp[k]);
    }
    for (int k = 0; k < NS; ++k) a.grad_state0[k][i] = g[k];
  }
  if (LEARN) {  // uniform branch: every thread of the block takes it
    for (int k = 0; k < Fn::kLearnable; ++k) {
      const double total = block_reduce(acc[k]);
      if (threadIdx.x == 0) partial[k * gridDim.x + blockIdx.x] = total;
    }
  }
}

template <template <typename, unsigned> class F, typename T>
void run(const ForwardArgs<T>& a, const StepOptions& o, void* stream) {
  if (a.n == 0) return;
  dispatch_flags<F<T, 0>::kFlags>(o.flags, [&](auto fl) {
    dispatch_bool(o.strict, [&](auto strict) {
      forward_kernel<F<T, fl.value>, strict.value, T><<<grid_for(a.n), kThreads, 0, as_stream(stream)>>>(a);
    });
  });
  check(cudaGetLastError(), "neuron forward launch");
}

template <template <typename, unsigned> class F, typename T>
void run(const BackwardArgs<T>& a, const StepOptions& o, void* stream) {
  constexpr int NL = F<T, 0>::kLearnable;
  cudaStream_t s = as_stream(stream);
  const bool learn = NL > 0 && a.grad_params != nullptr;
  if (a.n == 0) {
    if (learn) check(cudaMemsetAsync(a.grad_params, 0, sizeof(double) * NL, s), "memset");
    return;
  }
  const int64_t blocks = grid_for(a.n);
  Partials partial(learn ? blocks * NL : 0, s);
  const T sa = T(o.a), sc = T(o.c), keep = o.detach_reset ? T(0) : T(1);
  dispatch_flags<F<T, 0>::kFlags>(o.flags, [&](auto fl) {
    using Fn = F<T, fl.value>;
    dispatch_kind(o.surrogate, [&](auto k) {
      dispatch_bool(o.strict, [&](auto strict) {
        dispatch_bool(learn, [&](auto lrn) {
          if constexpr (!lrn.value || Fn::kLearnable > 0)
            backward_kernel<Fn, k.value, strict.value, lrn.value, T><<<blocks, kThreads, 0, s>>>(
                a, sa, sc, keep, lrn.value ? partial.ptr : nullptr);
        });
      });
    });
  });
  check(cudaGetLastError(), "neuron backward launch");
  for (int k = 0; learn && k < NL; ++k) {
    sum_partials<<<1, kThreads, 0, s>>>(partial.ptr + k * blocks, blocks, a.grad_params + k);
    check(cudaGetLastError(), "neuron backward reduction");
  }
}

}  // namespace cuda
}  // namespace snn
