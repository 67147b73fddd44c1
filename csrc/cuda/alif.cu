// ALIF (adaptive threshold): fused multi-step forward and backward on CUDA.
//
// Same equations and operation order as csrc/cpu/alif.cpp (see its header comment), which
// both must equal the torch reference snn.functional.alif.alif_multistep. One thread per
// neuron; V, B and their gradients live in registers.
#include "cuda/common.cuh"
#include "cuda/launchers.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cuda {
namespace {

template <typename T>
__device__ __forceinline__ T threshold(T vth, T beta, T b) { return vth + beta * b; }

template <bool DI, bool HARD, bool STRICT, typename T>
__global__ void forward_kernel(AlifForward<T> a, T d, T vr, T vth, T rho, T beta) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  T v = a.v0[i], b = a.b0[i];
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t k = t * a.n + i;
    const T h = lif_charge<DI>(v, a.x[k], d, vr);
    const T theta = threshold(vth, beta, b);
    const T s = fire<STRICT>(h - theta);
    a.spikes[k] = s;
    v = lif_reset<HARD>(h, s, theta, vr);
    b = rho * b + s;
    if (a.h_seq) a.h_seq[k] = h;
    if (a.b_seq) a.b_seq[k] = b;
    if (a.v_seq) a.v_seq[k] = v;
  }
  a.v_last[i] = v;
  a.b_last[i] = b;
}

template <int K, bool DI, bool HARD, bool STRICT, typename T>
__global__ void backward_kernel(AlifBackward<T> a, T d, T vr, T vth, T alpha, T keep, T rho, T beta,
                                double* partial) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const T soft = HARD ? T(0) : T(1), one_minus_d = T(1) - d, dhdx = lif_dh_dx<DI, T>(d);
  double acc = 0.0;
  if (i < a.n) {
    T gv = a.grad_v_last ? a.grad_v_last[i] : T(0);
    T gb = a.grad_b_last ? a.grad_b_last[i] : T(0);
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t k = t * a.n + i;
      if (a.grad_v_seq) gv += a.grad_v_seq[k];
      const T bprev = t > 0 ? a.b_seq[k - a.n] : a.b0[i];
      const T h = a.h_seq[k], theta = threshold(vth, beta, bprev), m = h - theta;
      const T s = fire<STRICT>(m), sg = surrogate_grad<K>(m, alpha);
      const T gm = (a.grad_spikes[k] + gb + keep * gv * lif_dv_ds<HARD>(h, theta, vr)) * sg;
      const T g = gv * lif_dv_dh<HARD>(s) + gm;
      const T gtheta = -gm - soft * gv * s;
      a.grad_x[k] = g * dhdx;
      gv = g * one_minus_d;
      gb = rho * gb + beta * gtheta;
      if (partial) {
        T vp;
        if (t > 0) {
          const T hp = a.h_seq[k - a.n];
          const T th = threshold(vth, beta, t > 1 ? a.b_seq[k - 2 * a.n] : a.b0[i]);
          vp = lif_reset<HARD>(hp, fire<STRICT>(hp - th), th, vr);
        } else {
          vp = a.v0[i];
        }
        acc += double(g * lif_dh_dd<DI>(vp, DI ? a.x[k] : T(0), vr));
      }
    }
    a.grad_v0[i] = gv;
    a.grad_b0[i] = gb;
  }
  if (partial) {
    const double total = block_reduce(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
  }
}

}  // namespace

template <typename T>
void alif_forward(const AlifForward<T>& a, const AlifParams& p, void* stream) {
  if (a.n == 0) return;
  dispatch_bool(p.lif.decay_input, [&](auto di) {
    dispatch_bool(p.lif.hard_reset, [&](auto hard) {
      dispatch_bool(p.lif.strict_threshold, [&](auto strict) {
        forward_kernel<di.value, hard.value, strict.value, T><<<grid_for(a.n), kThreads, 0, as_stream(stream)>>>(
            a, T(p.lif.decay), T(p.lif.v_reset), T(p.lif.v_threshold), T(p.rho), T(p.beta));
      });
    });
  });
  check(cudaGetLastError(), "alif_forward launch");
}

template <typename T>
void alif_backward(const AlifBackward<T>& a, const AlifParams& p, void* stream) {
  cudaStream_t s = as_stream(stream);
  if (a.n == 0) {
    if (a.grad_decay) check(cudaMemsetAsync(a.grad_decay, 0, sizeof(double), s), "memset");
    return;
  }
  const int64_t blocks = grid_for(a.n);
  Partials partial(a.grad_decay ? blocks : 0, s);
  const LifParams& q = p.lif;
  dispatch_kind(q.surrogate, [&](auto k) {
    dispatch_bool(q.decay_input, [&](auto di) {
      dispatch_bool(q.hard_reset, [&](auto hard) {
        dispatch_bool(q.strict_threshold, [&](auto strict) {
          backward_kernel<k.value, di.value, hard.value, strict.value, T><<<blocks, kThreads, 0, s>>>(
              a, T(q.decay), T(q.v_reset), T(q.v_threshold), T(q.alpha), T(q.detach_reset ? 0 : 1), T(p.rho),
              T(p.beta), a.grad_decay ? partial.ptr : nullptr);
        });
      });
    });
  });
  check(cudaGetLastError(), "alif_backward launch");
  if (a.grad_decay) {
    sum_partials<<<1, kThreads, 0, s>>>(partial.ptr, blocks, a.grad_decay);
    check(cudaGetLastError(), "alif_backward reduction");
  }
}

template void alif_forward<float>(const AlifForward<float>&, const AlifParams&, void*);
template void alif_forward<double>(const AlifForward<double>&, const AlifParams&, void*);
template void alif_backward<float>(const AlifBackward<float>&, const AlifParams&, void*);
template void alif_backward<double>(const AlifBackward<double>&, const AlifParams&, void*);

}  // namespace cuda
}  // namespace snn
