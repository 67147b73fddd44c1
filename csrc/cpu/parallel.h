// Blocking over neurons for the CPU kernels: the n neurons are cut into one contiguous block
// per thread (static schedule); each block runs the whole time loop, chunk by chunk
// (cpu/chunks.h), with its state in the outputs that return it (V[T-1], ∂L/∂V0, ...).
// Blocks are as long as the thread count allows because every time step of a block is a
// separate stream in memory and long streams are what the hardware prefetchers and DRAM
// pages reward: measured on the 2-core EPYC (T=16, N=1M, one thread), a LIF-like step loop
// took 4.4 ms with 128k-neuron blocks and 3.0 ms with 512k (16k: 4.9 ms), although the state
// then lives in L3 rather than L2. Block edges fall on multiples of kChunk, so anything
// reduced per chunk column (the PLIF decay gradient) is summed in the same order for any
// thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/chunks.h"

// The per-step inner loops are compiled three times, for AVX-512F, AVX2 and the baseline ISA,
// and the loader picks one (GCC target_clones/ifunc). No FMA: each element is computed
// with the same roundings either way, so results do not depend on the CPU.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(SNN_NO_CLONES)
#define SNN_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SNN_SIMD_CLONES
#endif

namespace snn {
namespace cpu {

constexpr int64_t kMaxBlock = int64_t(1) << 20;  // neurons per block at most (4 MiB per float array)
// Least work (neuron-steps) worth one more thread: waking a sleeping OpenMP thread costs
// microseconds on an idle machine and up to a scheduler time slice on a loaded one.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 16;

// How n neurons over `steps` time steps are cut: `count` blocks of `size` neurons on `threads`.
struct Blocking {
  int64_t size = kChunk, count = 0;
  int threads = 1;
};

inline Blocking plan_blocks(int64_t n, int64_t steps, int threads) {
  Blocking b;
  const int64_t by_work = std::max<int64_t>(1, n * std::max<int64_t>(steps, 1) / kMinWorkPerThread);
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, by_work));
  // per thread: k equal blocks of at most kMaxBlock neurons (k = 1 unless n is huge), so the
  // static schedule gives every thread the same share
  const int64_t per_thread = (n + nt - 1) / nt;
  const int64_t k = std::max<int64_t>(1, (per_thread + kMaxBlock - 1) / kMaxBlock);
  const int64_t per_block = (per_thread + k - 1) / k;
  b.size = std::max<int64_t>(kChunk, (per_block + kChunk - 1) / kChunk * kChunk);
  b.count = (n + b.size - 1) / b.size;
  b.threads = static_cast<int>(std::max<int64_t>(1, std::min(nt, b.count)));
  return b;
}

// Number of chunk columns of n neurons: one partial sum each for reductions over neurons.
inline int64_t chunk_columns(int64_t n) { return (n + kChunk - 1) / kChunk; }

// fn(begin, end) for every block of the plan.
template <typename F>
inline void for_each_block(const Blocking& plan, int64_t n, F&& fn) {
  const int64_t nb = plan.count, size = plan.size;
  if (plan.threads == 1) {
    for (int64_t b = 0; b < nb; ++b) fn(b * size, std::min(n, (b + 1) * size));
    stream_fence();
    return;
  }
#pragma omp parallel for num_threads(plan.threads) schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    fn(b * size, std::min(n, (b + 1) * size));
    stream_fence();  // this thread's streaming stores land before the join
  }
}

// Sum of partial sums (one per chunk column) in order: deterministic whatever the thread count.
template <typename It>
inline double ordered_sum(It begin, It end) {
  double s = 0.0;
  for (; begin != end; ++begin) s += *begin;
  return s;
}

template <typename T>
inline void copy_n(T* dst, const T* src, int64_t len) {
  std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(T));
}

// acc[0:len] += src[0:len]
template <typename T>
inline void add_into(T* __restrict acc, const T* __restrict src, int64_t len) {
  for (int64_t i = 0; i < len; ++i) acc[i] += src[i];
}

}  // namespace cpu
}  // namespace snn
