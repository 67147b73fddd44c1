// IF / LIF / PLIF: fused multi-step forward and backward on CUDA.
//
// Same equations and operation order as csrc/cpu/lif.cpp (see its header comment), which
// both must equal the torch reference snn.functional.lif.lif_multistep. One thread per
// neuron runs the whole time loop with V (forward) or the carried gradient (backward) in
// a register; reads and writes of step t are coalesced across the threads of a warp.
// Built with --fmad=false so that no multiply-add is fused where the reference rounds twice.
#include "cuda/common.cuh"
#include "cuda/launchers.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cuda {
namespace {

template <bool DI, bool HARD, bool STRICT, typename T>
__global__ void forward_kernel(LifForward<T> a, T d, T vr, T vth) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  T v = a.v0[i];
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t k = t * a.n + i;
    const T h = lif_charge<DI>(v, a.x[k], d, vr);
    const T s = fire<STRICT>(h - vth);
    a.spikes[k] = s;
    if (a.h_seq) a.h_seq[k] = h;
    v = lif_reset<HARD>(h, s, vth, vr);
    if (a.v_seq) a.v_seq[k] = v;
  }
  a.v_last[i] = v;
}

template <int K, bool DI, bool HARD, bool STRICT, typename T>
__global__ void backward_kernel(LifBackward<T> a, T d, T vr, T vth, T alpha, T keep, double* partial) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const bool live = i < a.n;
  const T one_minus_d = T(1) - d, dhdx = lif_dh_dx<DI, T>(d);
  double acc = 0.0;
  if (live) {
    T gv = a.grad_v_last ? a.grad_v_last[i] : T(0);
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t k = t * a.n + i;
      if (a.grad_v_seq) gv += a.grad_v_seq[k];
      const T h = a.h_seq[k], m = h - vth;
      const T s = fire<STRICT>(m), sg = surrogate_grad<K>(m, alpha);
      const T g = a.grad_spikes[k] * sg + gv * (lif_dv_dh<HARD>(s) + keep * lif_dv_ds<HARD>(h, vth, vr) * sg);
      a.grad_x[k] = g * dhdx;
      gv = g * one_minus_d;
      if (partial) {
        T vp;
        if (t > 0) {
          const T hp = a.h_seq[k - a.n];
          vp = lif_reset<HARD>(hp, fire<STRICT>(hp - vth), vth, vr);
        } else {
          vp = a.v0[i];
        }
        acc += double(g * lif_dh_dd<DI>(vp, DI ? a.x[k] : T(0), vr));
      }
    }
    a.grad_v0[i] = gv;
  }
  if (partial) {  // uniform branch: every thread of the block takes it
    const double total = block_reduce(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
  }
}

}  // namespace

template <typename T>
void lif_forward(const LifForward<T>& a, const LifParams& p, void* stream) {
  if (a.n == 0) return;
  dispatch_bool(p.decay_input, [&](auto di) {
    dispatch_bool(p.hard_reset, [&](auto hard) {
      dispatch_bool(p.strict_threshold, [&](auto strict) {
        forward_kernel<di.value, hard.value, strict.value, T><<<grid_for(a.n), kThreads, 0, as_stream(stream)>>>(
            a, T(p.decay), T(p.v_reset), T(p.v_threshold));
      });
    });
  });
  check(cudaGetLastError(), "lif_forward launch");
}

template <typename T>
void lif_backward(const LifBackward<T>& a, const LifParams& p, void* stream) {
  cudaStream_t s = as_stream(stream);
  if (a.n == 0) {
    if (a.grad_decay) check(cudaMemsetAsync(a.grad_decay, 0, sizeof(double), s), "memset");
    return;
  }
  const int64_t blocks = grid_for(a.n);
  Partials partial(a.grad_decay ? blocks : 0, s);
  dispatch_kind(p.surrogate, [&](auto k) {
    dispatch_bool(p.decay_input, [&](auto di) {
      dispatch_bool(p.hard_reset, [&](auto hard) {
        dispatch_bool(p.strict_threshold, [&](auto strict) {
          backward_kernel<k.value, di.value, hard.value, strict.value, T><<<blocks, kThreads, 0, s>>>(
              a, T(p.decay), T(p.v_reset), T(p.v_threshold), T(p.alpha), T(p.detach_reset ? 0 : 1),
              a.grad_decay ? partial.ptr : nullptr);
        });
      });
    });
  });
  check(cudaGetLastError(), "lif_backward launch");
  if (a.grad_decay) {
    sum_partials<<<1, kThreads, 0, s>>>(partial.ptr, blocks, a.grad_decay);
    check(cudaGetLastError(), "lif_backward reduction");
  }
}

template void lif_forward<float>(const LifForward<float>&, const LifParams&, void*);
template void lif_forward<double>(const LifForward<double>&, const LifParams&, void*);
template void lif_backward<float>(const LifBackward<float>&, const LifParams&, void*);
template void lif_backward<double>(const LifBackward<double>&, const LifParams&, void*);

}  // namespace cuda
}  // namespace snn
