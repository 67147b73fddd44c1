// Blocking over neurons for the CPU kernels: the n neurons are cut into blocks of
// kBlock; OpenMP threads take contiguous runs of blocks (static schedule) and each
// block runs the whole time loop with its state in small local arrays (L1-resident).
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

constexpr int64_t kBlock = 512;  // neurons per block: 2 KiB of float state per array
// Least work (neuron-steps) worth one more thread: waking a sleeping OpenMP thread costs
// microseconds on an idle machine and up to a scheduler time slice on a loaded one.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 16;

inline int64_t num_blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

// fn(block_index, begin, end) for every block, on up to `threads` threads (fewer when the
// n·steps neuron-steps are too little work to share).
template <typename F>
inline void for_each_block(int64_t n, int64_t steps, int threads, F&& fn) {
  const int64_t nb = num_blocks(n);
  const int64_t by_work = std::max<int64_t>(1, n * std::max<int64_t>(steps, 1) / kMinWorkPerThread);
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({int64_t(threads), nb, by_work})));
  if (nt == 1) {
    for (int64_t b = 0; b < nb; ++b) fn(b, b * kBlock, std::min(n, (b + 1) * kBlock));
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < nb; ++b) fn(b, b * kBlock, std::min(n, (b + 1) * kBlock));
}

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
