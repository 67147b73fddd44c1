// Fresh output buffers for the scan loops.
//
// A new multi-megabyte tensor from glibc's malloc is a fresh mmap whose pages fault on first touch, one 4 KiB
// page at a time (about 20 ms per 64 MiB on the reference machine, more than the scan itself). Large CPU
// outputs are therefore advised (madvise MADV_HUGEPAGE) to be backed by 2 MiB transparent huge pages before
// anything writes them: one fault per 2 MiB. The advice covers only these buffers (no process-wide allocator
// setting); it is a hint, so a kernel without transparent huge pages simply ignores it. SNN_HUGE_PAGES=0 in the
// environment turns the advice off (read once).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace snn {

constexpr std::uintptr_t kHugePageBytes = std::uintptr_t(2) << 20;
constexpr int64_t kAdviseFromBytes = int64_t(4) << 20;  // smaller buffers are mostly recycled by malloc

// Advise the whole 2 MiB pages inside [ptr, ptr + bytes) to be huge pages (errors ignored: it is a hint).
inline void advise_huge_pages(void* ptr, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto start = reinterpret_cast<std::uintptr_t>(ptr);
  const std::uintptr_t begin = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const std::uintptr_t end = (start + static_cast<std::uintptr_t>(bytes)) & ~(kHugePageBytes - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)ptr;
  (void)bytes;
#endif
}

inline bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SNN_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// at::empty_like(like), huge-page backed when it is a large CPU buffer.
inline at::Tensor fresh_like(const at::Tensor& like) {
  at::Tensor out = at::empty_like(like);
  if (huge_pages_enabled() && out.device().is_cpu() && static_cast<int64_t>(out.nbytes()) >= kAdviseFromBytes)
    advise_huge_pages(out.data_ptr(), static_cast<int64_t>(out.nbytes()));
  return out;
}

}  // namespace snn
