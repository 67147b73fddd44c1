// Blocking over neurons for the CPU kernels: the n neurons are cut into blocks; OpenMP
// threads take contiguous runs of blocks (static schedule) and each block runs the whole
// time loop with its state in local arrays (L1/L2-resident). Blocks are long (up to 16k
// neurons) because every time step of a block is a separate stream in memory: longer
// streams are what the hardware prefetchers need (measured: 512 -> 16k neurons made the
// forward ~1.6x faster on one thread).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

// The per-step inner loops are compiled twice, for AVX2 and for the baseline ISA, and the
// loader picks one (GCC target_clones/ifunc). AVX2 without FMA: each element is computed
// with the same roundings either way, so results do not depend on the CPU.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(SNN_NO_CLONES)
#define SNN_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SNN_SIMD_CLONES
#endif

namespace snn {
namespace cpu {

constexpr int64_t kMaxBlock = 16384;  // neurons per block at most (64 KiB per float array)
constexpr int64_t kMinBlock = 256;
// Least work (neuron-steps) worth one more thread: waking a sleeping OpenMP thread costs
// microseconds on an idle machine and up to a scheduler time slice on a loaded one.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 16;

// How n neurons over `steps` time steps are cut: `count` blocks of `size` neurons on `threads`.
struct Blocking {
  int64_t size = kMinBlock, count = 0;
  int threads = 1;
};

inline Blocking plan_blocks(int64_t n, int64_t steps, int threads) {
  Blocking b;
  const int64_t by_work = std::max<int64_t>(1, n * std::max<int64_t>(steps, 1) / kMinWorkPerThread);
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, by_work));
  // The cut depends on n only (never on the thread count), so per-block partial sums, and with
  // them the PLIF decay gradient, are bit-identical for any number of threads.
  const int64_t eighth = ((n + 7) / 8 + 63) / 64 * 64;  // >= 8 blocks when n allows: balance
  b.size = std::min(kMaxBlock, std::max(kMinBlock, eighth));
  b.count = (n + b.size - 1) / b.size;
  b.threads = static_cast<int>(std::max<int64_t>(1, std::min(nt, b.count)));
  return b;
}

// fn(block_index, begin, end) for every block of the plan.
template <typename F>
inline void for_each_block(const Blocking& plan, int64_t n, F&& fn) {
  const int64_t nb = plan.count, size = plan.size;
  if (plan.threads == 1) {
    for (int64_t b = 0; b < nb; ++b) fn(b, b * size, std::min(n, (b + 1) * size));
    return;
  }
#pragma omp parallel for num_threads(plan.threads) schedule(static)
  for (int64_t b = 0; b < nb; ++b) fn(b, b * size, std::min(n, (b + 1) * size));
}

// `k` scratch arrays of `len` elements for one block (heap: blocks are too big for the stack).
template <typename T>
struct Scratch {
  std::vector<T> buf;
  int64_t len;
  Scratch(int64_t k, int64_t len_) : buf(static_cast<size_t>(k * len_)), len(len_) {}
  T* operator[](int64_t i) { return buf.data() + i * len; }
};

// Sum of per-block partial sums in block order: deterministic whatever the thread count.
inline double ordered_sum(const std::vector<double>& partial) {
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

template <typename T>
inline void copy_n(T* dst, const T* src, int64_t len) {
  std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(T));
}

}  // namespace cpu
}  // namespace snn
