// CUBALIF (Loihi 2 current-based LIF, float mode): fused multi-step forward and backward on CUDA.
//
// Same equations and operation order as csrc/cpu/cubalif.cpp (see its header comment), which
// both must equal the torch reference snn.functional.cubalif.cubalif_multistep. One thread
// per neuron; U, V and their gradients live in registers; only P = V before reset is saved.
#include "cuda/common.cuh"
#include "cuda/launchers.h"
#include "dispatch.h"
#include "neuron_math.h"

namespace snn {
namespace cuda {
namespace {

template <typename T>
__global__ void forward_kernel(CubaForward<T> a, T cu, T cv, T vth, T bias) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  T u = a.u0[i], v = a.v0[i];
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t k = t * a.n + i;
    u = u * cu + a.x[k];
    const T pre = v * cv + u + bias;
    const T s = fire_strict(pre - vth);
    a.spikes[k] = s;
    v = s != T(0) ? T(0) : pre;
    if (a.vpre_seq) a.vpre_seq[k] = pre;
    if (a.v_seq) a.v_seq[k] = v;
  }
  a.u_last[i] = u;
  a.v_last[i] = v;
}

template <int K, typename T>
__global__ void backward_kernel(CubaBackward<T> a, T cu, T cv, T vth, T alpha, T keep) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  T gu = a.grad_u_last ? a.grad_u_last[i] : T(0);
  T gv = a.grad_v_last ? a.grad_v_last[i] : T(0);
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const int64_t k = t * a.n + i;
    if (a.grad_v_seq) gv += a.grad_v_seq[k];
    const T pre = a.vpre_seq[k], m = pre - vth;
    const T s = fire_strict(m), sg = surrogate_grad<K>(m, alpha);
    const T gp = gv * (T(1) - s) + (a.grad_spikes[k] - keep * gv * pre) * sg;
    const T g = gu + gp;
    a.grad_x[k] = g;
    gu = g * cu;
    gv = gp * cv;
  }
  a.grad_u0[i] = gu;
  a.grad_v0[i] = gv;
}

}  // namespace

template <typename T>
void cubalif_forward(const CubaForward<T>& a, const CubaParams& p, void* stream) {
  if (a.n == 0) return;
  forward_kernel<T><<<grid_for(a.n), kThreads, 0, as_stream(stream)>>>(a, T(p.cu), T(p.cv), T(p.v_threshold),
                                                                       T(p.bias));
  check(cudaGetLastError(), "cubalif_forward launch");
}

template <typename T>
void cubalif_backward(const CubaBackward<T>& a, const CubaParams& p, void* stream) {
  if (a.n == 0) return;
  dispatch_kind(p.surrogate, [&](auto k) {
    backward_kernel<k.value, T><<<grid_for(a.n), kThreads, 0, as_stream(stream)>>>(
        a, T(p.cu), T(p.cv), T(p.v_threshold), T(p.alpha), T(p.detach_reset ? 0 : 1));
  });
  check(cudaGetLastError(), "cubalif_backward launch");
}

template void cubalif_forward<float>(const CubaForward<float>&, const CubaParams&, void*);
template void cubalif_forward<double>(const CubaForward<double>&, const CubaParams&, void*);
template void cubalif_backward<float>(const CubaBackward<float>&, const CubaParams&, void*);
template void cubalif_backward<double>(const CubaBackward<double>&, const CubaParams&, void*);

}  // namespace cuda
}  // namespace snn
