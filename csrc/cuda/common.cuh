// Launch helpers for the CUDA neuron kernels: one thread per neuron with the time loop
// inside (state in registers, coalesced [t, i] accesses), error checks, and a
// deterministic two-pass reduction for the PLIF decay gradient.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace snn {
namespace cuda {

constexpr int kThreads = 256;  // threads per block (a power of two: block_reduce relies on it)

inline int64_t grid_for(int64_t n) { return (n + kThreads - 1) / kThreads; }
inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("snn cuda: ") + what + ": " + cudaGetErrorString(e));
}

// Sum of `value` over the block in a fixed tree order; the result is valid in thread 0.
// Safe to call several times in a row (the first barrier keeps a new call from overwriting a result still read).
__device__ inline double block_reduce(double value) {
  __shared__ double buf[kThreads];
  __syncthreads();
  buf[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  return buf[0];
}

// out[0] = Σ partial[0..count) in index order, by one block (deterministic).
static __global__ void sum_partials(const double* partial, int64_t count, double* out) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += partial[i];
  const double total = block_reduce(acc);
  if (threadIdx.x == 0) out[0] = total;
}

// Scratch for per-block partial sums, allocated and freed on the stream.
struct Partials {
  double* ptr = nullptr;
  cudaStream_t stream;
  Partials(int64_t count, cudaStream_t s) : stream(s) {
    check(cudaMallocAsync(reinterpret_cast<void**>(&ptr), sizeof(double) * (count > 0 ? count : 1), s),
          "cudaMallocAsync");
  }
  ~Partials() { cudaFreeAsync(ptr, stream); }
  Partials(const Partials&) = delete;
  Partials& operator=(const Partials&) = delete;
};

}  // namespace cuda
}  // namespace snn
