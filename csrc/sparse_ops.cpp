// Event-driven (spike-sparse) kernels on the CPU for snn.fused and snn.sparse, registered as the torch ops
// torch.ops.snn_sparse.* (TORCH_LIBRARY, no pybind11: the library loads with snn._C, or on its own through
// snn.sparse.kernels when snn._C was built before this file existed).
//
//   pack_rows(x [R, K]) -> (bits [R, ceil(K/8)] uint8, nnz, binary)
//       bit j of byte b of row r is (x[r, 8b+j] != 0), least significant bit first; nnz counts the non-zeros;
//       binary: every value is 0 or 1 (then the bits are the whole of x)
//   unpack_rows(bits, K, dtype) -> x [R, K] of 0/1
//   event_linear(x [R, K], wt [K, N], bias [N]?, pack) -> (y [R, N], bits, nnz, binary)
//       y[r] = bias + Σ_{k: x[r,k] != 0} x[r,k]·wt[k], accumulated in k order: the rows of wt (= Wᵀ) are read only
//       for the inputs that are non-zero. float32/float64 wt: y in wt's dtype; int8 wt: y int32 (x must hold
//       integers). With pack, bits/nnz/binary as pack_rows gives them, from the same pass over x.
//   event_grad_weight(bits [R, ceil(K/8)], K, g [R, N]) -> gwt [K, N]
//       gwt[k] = Σ_{r: bit (r, k) set} g[r], rows in ascending order: the weight gradient (transposed) of a Linear
//       layer whose binary input was packed by pack_rows.
//   event_conv2d(x [R, C, H, W], wtile, O, kh, kw, bias [O]?, ph, pw) -> y [R, Ho, Wo, O] (channels-last)
//       a stride-1 convolution (zero padding ph, pw) over the non-zero inputs only: per output position, the
//       weight vectors W[:, c, dy, dx] of the active channels c at each input position in its window, summed in
//       registers; wtile = tile_weight(W.reshape(O, C·kh·kw)). Work ∝ the input spikes.
//   cuba_fixed(acc [T, M] int32, factor, exp, du, dv, vth, bias [M] int64, readout)
//       -> (spikes [T, M] float32, v [M] int64, wraps, clips)
//       Lava's fixed-point CUBA LIF (PyLifModelBitAcc) over T steps; its torch reference is
//       snn.export.loihi.emulate (_run_fixed_layer):
//         a = floor_shift(factor·acc, exp)    (<< exp, or the arithmetic >> -exp)
//         u = wrap24(trunc(u·(4095 - du) / 4096) + a·64)
//         v = clip(trunc(v·(4096 - dv) / 4096) + u + bias, ±(2^23 - 1));  s = v > vth·64;  v = 0 where s
//       (readout: no spikes, no reset). wraps/clips count the steps where wrap24/clip changed a value.
//
// Blocking: rows in blocks whose index lists stay in cache; columns in tiles of 256 bytes held in registers
// (GCC vector types, compiled for AVX-512F, AVX2 and the baseline ISA); threads over rows (forward), over
// column tiles or input ranges (weight gradient). Results do not depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SPARSE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define SPARSE_AVX2 1
#else
#define SPARSE_CLONES
#define SPARSE_AVX2 0
#endif

namespace snn_sparse {

// The interface version, checked by snn.sparse.kernels (a stale build of this file in snn._C is refused):
// raise it with any change of an op's meaning or signature.
constexpr int64_t kVersion = 5;
constexpr int64_t kRowBlock = 1024;   // rows whose index lists are built and used together (forward)
constexpr int64_t kGradBlock = 512;   // rows per block of the weight gradient (a column tile of g in L2)
constexpr int64_t kAhead = 6;         // entries ahead whose rows are prefetched

// ---------------------------------------------------------------------------------------------- row scan
// Non-zero mask of 8 consecutive values; `odd` collects the values that are neither 0 nor 1.
template <typename X>
inline unsigned mask8_scalar(const X* x, int n, unsigned& odd) {
  unsigned m = 0;
  for (int j = 0; j < n; ++j) {
    const X v = x[j];
    m |= unsigned(v != X(0)) << j;
    odd |= unsigned(v != X(0) && v != X(1));
  }
  return m;
}

#if SPARSE_AVX2
__attribute__((target("avx2"))) inline unsigned mask8_avx2(const float* x, unsigned& odd) {
  const __m256 v = _mm256_loadu_ps(x);
  const __m256 nz = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ);
  const __m256 n1 = _mm256_cmp_ps(v, _mm256_set1_ps(1.0f), _CMP_NEQ_UQ);
  odd |= unsigned(_mm256_movemask_ps(_mm256_and_ps(nz, n1)));
  return unsigned(_mm256_movemask_ps(nz));
}

__attribute__((target("avx2"))) inline unsigned mask8_avx2(const double* x, unsigned& odd) {
  unsigned m = 0;
  for (int h = 0; h < 2; ++h) {
    const __m256d v = _mm256_loadu_pd(x + 4 * h);
    const __m256d nz = _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_NEQ_UQ);
    const __m256d n1 = _mm256_cmp_pd(v, _mm256_set1_pd(1.0), _CMP_NEQ_UQ);
    odd |= unsigned(_mm256_movemask_pd(_mm256_and_pd(nz, n1)));
    m |= unsigned(_mm256_movemask_pd(nz)) << (4 * h);
  }
  return m;
}
#endif

// The index lists of a block of rows: start[i]..start[i+1] delimit row i's entries in idx (and val).
template <typename X>
struct ScanBuffers {
  std::vector<int32_t> idx;
  std::vector<X> val;
  std::vector<int64_t> start;
};

template <typename X>
ScanBuffers<X>& scan_buffers() {
  static thread_local ScanBuffers<X> buf;  // reused across calls: no page faults on the hot path
  return buf;
}

// The index list (and values) of the non-zeros of `rows` rows of x [., K] into buf (grown as needed; with
// LISTS false only their count, in buf.start[rows]). Writes the packed bits of the rows when `bits` is given.
// Returns whether some value was neither 0 nor 1.
template <typename X, bool AVX2, bool LISTS>
#if SPARSE_AVX2
__attribute__((target("avx2")))
#endif
bool scan_rows_impl(const X* x, int64_t rows, int64_t K, ScanBuffers<X>& buf, uint8_t* bits, int64_t kb) {
  unsigned odd = 0;
  int64_t n = 0;
  if (int64_t(buf.start.size()) < rows + 1) buf.start.resize(rows + 1);
  for (int64_t r = 0; r < rows; ++r) {
    const X* xr = x + r * K;
    buf.start[r] = n;
    if (LISTS && int64_t(buf.idx.size()) < n + K) {  // room for a whole row
      buf.idx.resize(std::max<int64_t>(2 * int64_t(buf.idx.size()), n + K));
      buf.val.resize(buf.idx.size());
    }
    int32_t* idx = buf.idx.data();
    X* val = buf.val.data();
    for (int64_t b = 0; b < K; b += 8) {
      const int w = int(std::min<int64_t>(8, K - b));
      unsigned m;
#if SPARSE_AVX2
      if constexpr (AVX2) m = (w == 8) ? mask8_avx2(xr + b, odd) : mask8_scalar(xr + b, w, odd);
      else m = mask8_scalar(xr + b, w, odd);
#else
      m = mask8_scalar(xr + b, w, odd);
#endif
      if (bits) bits[r * kb + (b >> 3)] = uint8_t(m);
      if constexpr (!LISTS) {
        n += __builtin_popcount(m);
        continue;
      }
      while (m) {
        const int j = __builtin_ctz(m);
        m &= m - 1;
        idx[n] = int32_t(b + j);
        val[n] = xr[b + j];
        ++n;
      }
    }
  }
  buf.start[rows] = n;
  return odd != 0;
}

inline bool has_avx2() {
#if SPARSE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
#else
  return false;
#endif
}

template <typename X, bool LISTS>
bool scan_rows(const X* x, int64_t rows, int64_t K, ScanBuffers<X>& buf, uint8_t* bits, int64_t kb) {
  return has_avx2() ? scan_rows_impl<X, true, LISTS>(x, rows, K, buf, bits, kb)
                    : scan_rows_impl<X, false, LISTS>(x, rows, K, buf, bits, kb);
}

// ---------------------------------------------------------------------------------------------- tiles
// A 32-byte vector of A (one AVX register); a tile is kVecs of them: 256 bytes of accumulators, kTile columns.
// Weights are kept tiled, [tiles, K, kTile] (tile_weight): the kTile columns of one tile lie together for
// every input k, so that a tile's weights are one contiguous block (no 4 KiB-strided rows that alias in cache).
template <typename A>
struct Lanes {
  typedef A V __attribute__((vector_size(32)));
  static constexpr int kLanes = 32 / int(sizeof(A));
  static constexpr int kVecs = 8;
  static constexpr int kTile = kLanes * kVecs;
};

// The accumulator type of weights W: int8 weights sum in int32.
template <typename W>
using acc_t = std::conditional_t<std::is_same_v<W, int8_t>, int32_t, W>;

// kLanes values of W at p, converted to A (int8 weights widen to int32).
template <typename W, typename A>
__attribute__((always_inline)) inline typename Lanes<A>::V load_lanes(const W* p) {
  typedef typename Lanes<A>::V V;
  if constexpr (std::is_same_v<W, A>) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    typedef W VW __attribute__((vector_size(Lanes<A>::kLanes * sizeof(W))));
    VW w;
    std::memcpy(&w, p, sizeof w);
    return __builtin_convertvector(w, V);
  }
}

// y[i, tile t] = bias + Σ_j val_j·W[tile t, idx_j] over row i's entries (j in start[i]..start[i+1]) for `rows`
// rows and every tile; each output element is summed in entry order. `bias` has N values (or is null).
template <typename X, typename W, typename A, bool VALS>
SPARSE_CLONES void accumulate_rows(const int32_t* idx, const X* val, const int64_t* start, int64_t rows,
                                   const W* wtile, int64_t K, int64_t N, const A* bias, A* y) {
  using L = Lanes<A>;
  typedef typename L::V V;
  const int64_t tiles = (N + L::kTile - 1) / L::kTile;
  for (int64_t t = 0; t < tiles; ++t) {
    const W* slice = wtile + t * K * L::kTile;
    const int64_t c = t * L::kTile, width = std::min<int64_t>(L::kTile, N - c);
    V init[L::kVecs] = {};  // the tile's bias (zero past N)
    if (bias) std::memcpy(init, bias + c, width * sizeof(A));
    for (int64_t i = 0; i < rows; ++i) {
      V acc[L::kVecs];
      for (int v = 0; v < L::kVecs; ++v) acc[v] = init[v];
      const int64_t e = start[i + 1];
      for (int64_t j = start[i]; j < e; ++j) {
        const W* w = slice + int64_t(idx[j]) * L::kTile;
        if (j + kAhead < e) {  // the weights a few entries ahead: their addresses are data-dependent
          const char* p = reinterpret_cast<const char*>(slice + int64_t(idx[j + kAhead]) * L::kTile);
          for (int l = 0; l < int(L::kTile * sizeof(W)); l += 64) __builtin_prefetch(p + l);
        }
        if constexpr (VALS) {
          const A s = A(val[j]);
          for (int v = 0; v < L::kVecs; ++v) acc[v] += s * load_lanes<W, A>(w + v * L::kLanes);
        } else {
          for (int v = 0; v < L::kVecs; ++v) acc[v] += load_lanes<W, A>(w + v * L::kLanes);
        }
      }
      std::memcpy(y + i * N + c, acc, width * sizeof(A));
    }
  }
}

// out[k] += Σ_j gbuf[rows_of[j]] for the nk inputs k (entries start[k]..start[k+1]); out and gbuf are rows of
// one tile (kTile values each).
template <typename A>
SPARSE_CLONES void accumulate_cols(const int32_t* rows_of, const int64_t* start, int64_t nk, const A* gbuf, A* out) {
  using L = Lanes<A>;
  typedef typename L::V V;
  for (int64_t k = 0; k < nk; ++k) {
    const int64_t b = start[k], e = start[k + 1];
    if (b == e) continue;
    V acc[L::kVecs];
    A* o = out + k * L::kTile;
    std::memcpy(acc, o, sizeof acc);
    for (int64_t j = b; j < e; ++j) {
      const A* gr = gbuf + int64_t(rows_of[j]) * L::kTile;
      for (int v = 0; v < L::kVecs; ++v) acc[v] += load_lanes<A, A>(gr + v * L::kLanes);
    }
    std::memcpy(o, acc, sizeof acc);
  }
}

// The non-zero inputs of one row x [C, H·W] by position: start[p]..start[p+1] delimit position p's channels
// (ascending) and values. Returns whether some value was neither 0 nor 1.
template <typename T>
struct PositionLists {
  std::vector<int64_t> start, fill;
  std::vector<int32_t> ch;
  std::vector<T> val;
};

template <typename T>
bool positions_of_row(const T* x, int64_t C, int64_t HW, PositionLists<T>& l) {
  ScanBuffers<T>& nz = scan_buffers<T>();      // the non-zeros channel by channel (vectorised scan)
  const bool odd = scan_rows<T, true>(x, C, HW, nz, nullptr, 0);
  const int64_t n = nz.start[C];
  l.start.assign(HW + 1, 0);
  for (int64_t j = 0; j < n; ++j) ++l.start[nz.idx[j] + 1];
  for (int64_t p = 0; p < HW; ++p) l.start[p + 1] += l.start[p];
  if (int64_t(l.ch.size()) < n) {
    l.ch.resize(n);
    l.val.resize(n);
  }
  l.fill.assign(l.start.begin(), l.start.end() - 1);
  for (int64_t c = 0; c < C; ++c)     // channels ascending within each position
    for (int64_t j = nz.start[c]; j < nz.start[c + 1]; ++j) {
      const int64_t at = l.fill[nz.idx[j]]++;
      l.ch[at] = int32_t(c);
      l.val[at] = nz.val[j];
    }
  return odd;
}

// y[oy, ox, :] = bias + Σ_{dy, dx} Σ_{c active at (oy+dy-ph, ox+dx-pw)} v·W[:, c, dy, dx] for one row, stride 1,
// channels-last y [Ho, Wo, O]; W tiled [tiles, C·kh·kw, kTile] (tile_weight of W [O, C·kh·kw]). Each output
// tile is summed in registers (dy, dx, then c ascending) and stored once.
template <typename T, bool VALS>
SPARSE_CLONES void gather_conv_row(const PositionLists<T>& l, int64_t H, int64_t W, const T* wtile, int64_t C,
                                   int64_t kh, int64_t kw, int64_t O, const T* bias, int64_t ph, int64_t pw, T* y,
                                   int64_t Ho, int64_t Wo) {
  using L = Lanes<T>;
  typedef typename L::V V;
  const int64_t tiles = (O + L::kTile - 1) / L::kTile, CK = C * kh * kw;
  for (int64_t t = 0; t < tiles; ++t) {
    const T* slice = wtile + t * CK * L::kTile;
    const int64_t c0 = t * L::kTile, width = std::min<int64_t>(L::kTile, O - c0);
    V init[L::kVecs] = {};
    if (bias) std::memcpy(init, bias + c0, width * sizeof(T));
    for (int64_t oy = 0; oy < Ho; ++oy) {
      for (int64_t ox = 0; ox < Wo; ++ox) {
        V acc[L::kVecs];
        for (int v = 0; v < L::kVecs; ++v) acc[v] = init[v];
        for (int64_t dy = 0; dy < kh; ++dy) {
          const int64_t iy = oy + dy - ph;
          if (iy < 0 || iy >= H) continue;
          for (int64_t dx = 0; dx < kw; ++dx) {
            const int64_t ix = ox + dx - pw;
            if (ix < 0 || ix >= W) continue;
            const int64_t p = iy * W + ix;
            for (int64_t j = l.start[p]; j < l.start[p + 1]; ++j) {
              const T* w = slice + ((int64_t(l.ch[j]) * kh + dy) * kw + dx) * L::kTile;
              if constexpr (VALS) {
                const T s = l.val[j];
                for (int v = 0; v < L::kVecs; ++v) acc[v] += s * load_lanes<T, T>(w + v * L::kLanes);
              } else {
                for (int v = 0; v < L::kVecs; ++v) acc[v] += load_lanes<T, T>(w + v * L::kLanes);
              }
            }
          }
        }
        std::memcpy(y + (oy * Wo + ox) * O + c0, acc, width * sizeof(T));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- checks
void check_rows(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK(t.device().is_cpu(), "snn_sparse.", op, ": ", name, " must be a CPU tensor, got one on ", t.device());
  TORCH_CHECK(t.dim() == 2, "snn_sparse.", op, ": ", name, " must be 2-D [rows, columns], got shape ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), "snn_sparse.", op, ": ", name, " must be contiguous");
}

// Rows per parallel task for `per_row` operations per row: a task does at least ~2^20 operations (about a
// millisecond), so small problems (batch-1 inference, small layers) stay on one thread and never wait for a
// second one, which on a busy machine can cost a scheduler time slice (measured: 7.7 ms instead of 1 ms).
int64_t grain_rows(int64_t per_row) { return std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, per_row)); }

// ---------------------------------------------------------------------------------------------- ops
// One pass over x: index lists per block of rows (LISTS), optional packed bits, then
// `consume(r0, rows, buffers, odd)`.
template <typename X, bool LISTS, typename F>
std::tuple<int64_t, bool> for_row_blocks(const at::Tensor& x, uint8_t* bits, int64_t per_row, F&& consume) {
  const int64_t R = x.size(0), K = x.size(1), kb = (K + 7) / 8;
  const X* xp = x.data_ptr<X>();
  std::atomic<int64_t> nnz{0};
  std::atomic<bool> odd{false};
  at::parallel_for(0, R, grain_rows(per_row), [&](int64_t r0, int64_t r1) {
    auto& buf = scan_buffers<X>();
    int64_t count = 0;
    bool any_odd = false;
    for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
      const int64_t rows = std::min(kRowBlock, r1 - rb);
      const bool o = scan_rows<X, LISTS>(xp + rb * K, rows, K, buf, bits ? bits + rb * kb : nullptr, kb);
      count += buf.start[rows];
      any_odd = any_odd || o;
      consume(rb, rows, buf, o);
    }
    nnz += count;
    if (any_odd) odd = true;
  });
  return {nnz.load(), !odd.load()};
}

std::tuple<at::Tensor, int64_t, bool> pack_rows(const at::Tensor& x) {
  check_rows(x, "x", "pack_rows");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "snn_sparse.pack_rows: x must be float32 or float64, got ", x.scalar_type());
  const int64_t R = x.size(0), K = x.size(1);
  at::Tensor bits = at::empty({R, (K + 7) / 8}, x.options().dtype(at::kByte));
  std::tuple<int64_t, bool> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pack_rows", [&] {
    res = for_row_blocks<scalar_t, false>(x, bits.data_ptr<uint8_t>(), K, [](int64_t, int64_t, auto&, bool) {});
  });
  return {bits, std::get<0>(res), std::get<1>(res)};
}

at::Tensor unpack_rows(const at::Tensor& bits, int64_t K, at::ScalarType dtype) {
  check_rows(bits, "bits", "unpack_rows");
  TORCH_CHECK(bits.scalar_type() == at::kByte, "snn_sparse.unpack_rows: bits must be uint8");
  TORCH_CHECK(K >= 0 && (K + 7) / 8 == bits.size(1), "snn_sparse.unpack_rows: ", K, " columns do not fit ",
              bits.size(1), " bytes per row");
  const int64_t R = bits.size(0), kb = bits.size(1);
  at::Tensor x = at::empty({R, K}, bits.options().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "unpack_rows", [&] {
    const uint8_t* bp = bits.data_ptr<uint8_t>();
    scalar_t* xp = x.data_ptr<scalar_t>();
    at::parallel_for(0, R, grain_rows(K), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t k = 0; k < K; ++k) xp[r * K + k] = scalar_t((bp[r * kb + (k >> 3)] >> (k & 7)) & 1);
    });
  });
  return x;
}

// Columns per tile for weights of dtype w: 64 for float32 and int8 (int32 sums), 32 for float64.
int64_t tile_of(at::ScalarType w) {
  switch (w) {
    case at::kFloat: return Lanes<float>::kTile;
    case at::kDouble: return Lanes<double>::kTile;
    case at::kChar: return Lanes<int32_t>::kTile;
    default: TORCH_CHECK(false, "snn_sparse: weights must be float32, float64 or int8, got ", w);
  }
  return 0;
}

at::Tensor tile_weight(const at::Tensor& w) {
  check_rows(w, "w", "tile_weight");
  const int64_t N = w.size(0), K = w.size(1), tile = tile_of(w.scalar_type());
  const int64_t tiles = (N + tile - 1) / tile;
  at::Tensor padded = at::zeros({tiles * tile, K}, w.options());
  padded.narrow(0, 0, N).copy_(w);
  return padded.view({tiles, tile, K}).transpose(1, 2).contiguous();
}

template <typename X, typename W>
std::tuple<int64_t, bool> event_linear_typed(const at::Tensor& x, const at::Tensor& wtile, int64_t N,
                                             const acc_t<W>* bias, at::Tensor& y, uint8_t* bits) {
  using A = acc_t<W>;
  const int64_t K = x.size(1);
  const W* w = wtile.data_ptr<W>();
  A* yp = y.data_ptr<A>();
  return for_row_blocks<X, true>(x, bits, K + N * std::max<int64_t>(1, K / 16),
                           [&](int64_t r0, int64_t rows, ScanBuffers<X>& buf, bool odd) {
    if (odd)
      accumulate_rows<X, W, A, true>(buf.idx.data(), buf.val.data(), buf.start.data(), rows, w, K, N, bias,
                                     yp + r0 * N);
    else
      accumulate_rows<X, W, A, false>(buf.idx.data(), buf.val.data(), buf.start.data(), rows, w, K, N, bias,
                                      yp + r0 * N);
  });
}

std::tuple<at::Tensor, at::Tensor, int64_t, bool> event_linear(const at::Tensor& x, const at::Tensor& wtile,
                                                               int64_t N, const c10::optional<at::Tensor>& bias,
                                                               bool pack) {
  check_rows(x, "x", "event_linear");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "snn_sparse.event_linear: x must be float32 or float64, got ", x.scalar_type());
  const int64_t R = x.size(0), K = x.size(1);
  TORCH_CHECK(K < (int64_t(1) << 31), "snn_sparse.event_linear: too many input columns");
  const bool int8 = wtile.scalar_type() == at::kChar;
  TORCH_CHECK(int8 || wtile.scalar_type() == x.scalar_type(), "snn_sparse.event_linear: the weights (",
              wtile.scalar_type(), ") must have x's dtype (", x.scalar_type(), ") or be int8");
  const int64_t tile = tile_of(wtile.scalar_type()), tiles = (N + tile - 1) / tile;
  TORCH_CHECK(wtile.device().is_cpu() && wtile.is_contiguous() && wtile.dim() == 3 && wtile.size(0) == tiles &&
                  wtile.size(1) == K && wtile.size(2) == tile,
              "snn_sparse.event_linear: the weights must be tile_weight(W) of W [", N, ", ", K, "], shape [", tiles,
              ", ", K, ", ", tile, "]; got ", wtile.sizes());
  const auto acc_type = int8 ? at::kInt : x.scalar_type();
  at::Tensor y = at::empty({R, N}, x.options().dtype(acc_type));
  at::Tensor bits = at::empty({pack ? R : 0, (K + 7) / 8}, x.options().dtype(at::kByte));
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == N && bias->scalar_type() == acc_type && bias->device().is_cpu(),
                "snn_sparse.event_linear: bias must be a CPU tensor [", N, "] of dtype ", acc_type);
    b = bias->contiguous();
  }
  uint8_t* bp = pack ? bits.data_ptr<uint8_t>() : nullptr;
  std::tuple<int64_t, bool> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_linear", [&] {
    if (int8)
      res = event_linear_typed<scalar_t, int8_t>(x, wtile, N, b.defined() ? b.data_ptr<int32_t>() : nullptr, y, bp);
    else
      res = event_linear_typed<scalar_t, scalar_t>(x, wtile, N, b.defined() ? b.data_ptr<scalar_t>() : nullptr, y, bp);
  });
  return {y, bits, std::get<0>(res), std::get<1>(res)};
}

// The rows (within a block) listed per input k in [k0, k1): a column-compressed view of a block of packed rows.
struct ColumnLists {
  std::vector<int64_t> start, fill;
  std::vector<int32_t> rows;
};

void columns_of_block(const uint8_t* bits, int64_t kb, int64_t rows, int64_t k0, int64_t k1, ColumnLists& out) {
  const int64_t nk = k1 - k0;
  out.start.assign(nk + 1, 0);
  const int64_t b0 = k0 >> 3, b1 = (k1 + 7) >> 3;
  auto bits_in = [&](int64_t r, int64_t b) {  // the byte's bits that fall in [k0, k1)
    unsigned m = bits[r * kb + b];
    const int64_t lo = b * 8;
    if (lo < k0) m &= 0xffu << (k0 - lo);
    if (lo + 8 > k1) m &= 0xffu >> (lo + 8 - k1);
    return m;
  };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = b0; b < b1; ++b)
      for (unsigned m = bits_in(r, b); m; m &= m - 1) ++out.start[b * 8 + __builtin_ctz(m) - k0 + 1];
  for (int64_t k = 0; k < nk; ++k) out.start[k + 1] += out.start[k];
  if (int64_t(out.rows.size()) < out.start[nk]) out.rows.resize(out.start[nk]);
  out.fill.assign(out.start.begin(), out.start.end() - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = b0; b < b1; ++b)
      for (unsigned m = bits_in(r, b); m; m &= m - 1) out.rows[out.fill[b * 8 + __builtin_ctz(m) - k0]++] = int32_t(r);
}

template <typename A>
at::Tensor grad_weight_typed(const at::Tensor& bits, int64_t K, const at::Tensor& g) {
  using L = Lanes<A>;
  const int64_t R = g.size(0), N = g.size(1), kb = bits.size(1);
  const int64_t tiles = (N + L::kTile - 1) / L::kTile, blocks = (R + kGradBlock - 1) / kGradBlock;
  const uint8_t* bp = bits.data_ptr<uint8_t>();
  const A* gp = g.data_ptr<A>();
  // 1. the column lists of every block of rows, once
  std::vector<ColumnLists> lists(blocks);
  at::parallel_for(0, blocks, std::max<int64_t>(1, grain_rows(kGradBlock * kb)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      columns_of_block(bp + b * kGradBlock * kb, kb, std::min(kGradBlock, R - b * kGradBlock), 0, K, lists[b]);
  });
  // 2. per tile of outputs: its sums for inputs [k0, k1) in a local block (kept in cache over all row blocks),
  //    each row block's columns of g copied together first; then written into gw [N, K]
  at::Tensor gw = at::empty({N, K}, g.options());
  A* out = gw.data_ptr<A>();
  auto work = [&](int64_t k0, int64_t k1, int64_t t0, int64_t t1) {
    static thread_local std::vector<A> gbuf, acc;
    gbuf.resize(kGradBlock * L::kTile);
    acc.resize((k1 - k0) * L::kTile);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c = t * L::kTile, width = std::min<int64_t>(L::kTile, N - c);
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t b = 0; b < blocks; ++b) {
        const ColumnLists& l = lists[b];
        if (l.start[k1] == l.start[k0]) continue;
        const int64_t rb = b * kGradBlock, rows = std::min(kGradBlock, R - rb);
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(gbuf.data() + r * L::kTile, gp + (rb + r) * N + c, width * sizeof(A));
          std::fill(gbuf.data() + r * L::kTile + width, gbuf.data() + (r + 1) * L::kTile, A(0));
        }
        accumulate_cols<A>(l.rows.data(), l.start.data() + k0, k1 - k0, gbuf.data(), acc.data());
      }
      for (int64_t n = 0; n < width; ++n)
        for (int64_t k = k0; k < k1; ++k) out[(c + n) * K + k] = acc[(k - k0) * L::kTile + n];
    }
  };
  const int nthreads = at::get_num_threads();
  const int64_t per_tile = R * std::max<int64_t>(1, K / 8);
  if (tiles >= nthreads) {  // threads over column tiles: each reads its columns of g once
    at::parallel_for(0, tiles, grain_rows(per_tile), [&](int64_t t0, int64_t t1) { work(0, K, t0, t1); });
  } else {  // few columns: threads over the inputs
    at::parallel_for(0, K, grain_rows(R * tiles), [&](int64_t k0, int64_t k1) { work(k0, k1, 0, tiles); });
  }
  return gw;
}

at::Tensor event_grad_weight(const at::Tensor& bits, int64_t K, const at::Tensor& g) {
  check_rows(bits, "bits", "event_grad_weight");
  check_rows(g, "g", "event_grad_weight");
  TORCH_CHECK(bits.scalar_type() == at::kByte, "snn_sparse.event_grad_weight: bits must be uint8");
  TORCH_CHECK(bits.size(0) == g.size(0) && (K + 7) / 8 == bits.size(1), "snn_sparse.event_grad_weight: bits ",
              bits.sizes(), " do not hold ", g.size(0), " rows of ", K, " inputs");
  at::Tensor gw;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "event_grad_weight",
                             [&] { gw = grad_weight_typed<scalar_t>(bits, K, g); });
  return gw;
}

at::Tensor event_conv2d(const at::Tensor& x, const at::Tensor& wtile, int64_t O, int64_t kh, int64_t kw,
                        const c10::optional<at::Tensor>& bias, int64_t ph, int64_t pw) {
  TORCH_CHECK(x.device().is_cpu() && wtile.device().is_cpu(), "snn_sparse.event_conv2d: x and the weights must be CPU "
              "tensors");
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "snn_sparse.event_conv2d: x must be a contiguous [R, C, H, W]");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "snn_sparse.event_conv2d: x must be float32 or float64, got ", x.scalar_type());
  const int64_t R = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t tile = tile_of(x.scalar_type()), tiles = (O + tile - 1) / tile;
  TORCH_CHECK(kh >= 1 && kw >= 1 && wtile.scalar_type() == x.scalar_type() && wtile.is_contiguous() &&
                  wtile.dim() == 3 && wtile.size(0) == tiles && wtile.size(1) == C * kh * kw && wtile.size(2) == tile,
              "snn_sparse.event_conv2d: the weights must be tile_weight(W.reshape(O, -1)) of W [", O, ", ", C, ", ",
              kh, ", ", kw, "] in x's dtype, shape [", tiles, ", ", C * kh * kw, ", ", tile, "]; got ", wtile.sizes());
  const int64_t Ho = H + 2 * ph - kh + 1, Wo = W + 2 * pw - kw + 1;
  TORCH_CHECK(ph >= 0 && pw >= 0 && Ho > 0 && Wo > 0, "snn_sparse.event_conv2d: padding (", ph, ", ", pw,
              ") and kernel (", kh, ", ", kw, ") leave no output for a ", H, "x", W, " input");
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == O && bias->scalar_type() == x.scalar_type(),
                "snn_sparse.event_conv2d: bias must be [", O, "] of x's dtype");
    b = bias->contiguous();
  }
  at::Tensor y = at::empty({R, Ho, Wo, O}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_conv2d", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = wtile.data_ptr<scalar_t>();
    const scalar_t* bp = b.defined() ? b.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, R, grain_rows(C * H * W + Ho * Wo * O), [&](int64_t r0, int64_t r1) {
      static thread_local PositionLists<scalar_t> lists;
      for (int64_t r = r0; r < r1; ++r) {
        const bool odd = positions_of_row(xp + r * C * H * W, C, H * W, lists);
        scalar_t* yr = yp + r * Ho * Wo * O;
        if (odd)
          gather_conv_row<scalar_t, true>(lists, H, W, wp, C, kh, kw, O, bp, ph, pw, yr, Ho, Wo);
        else
          gather_conv_row<scalar_t, false>(lists, H, W, wp, C, kh, kw, O, bp, ph, pw, yr, Ho, Wo);
      }
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, int64_t, int64_t> cuba_fixed(const at::Tensor& acc, int64_t factor, int64_t exp,
                                                               int64_t du, int64_t dv, int64_t vth,
                                                               const at::Tensor& bias, bool readout) {
  check_rows(acc, "acc", "cuba_fixed");
  TORCH_CHECK(acc.scalar_type() == at::kInt, "snn_sparse.cuba_fixed: acc must be int32");
  const int64_t T = acc.size(0), M = acc.size(1);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == M && bias.scalar_type() == at::kLong && bias.is_contiguous(),
              "snn_sparse.cuba_fixed: bias must be int64 [", M, "]");
  TORCH_CHECK(du >= 0 && du < 4096 && dv >= 0 && dv < 4096 && exp >= -31 && exp <= 31,
              "snn_sparse.cuba_fixed: du, dv must lie in [0, 4095] and exp in [-31, 31]");
  constexpr int64_t kMax = int64_t(1) << 23;
  at::Tensor s = at::empty({T, M}, acc.options().dtype(at::kFloat));
  at::Tensor v_out = at::empty({M}, acc.options().dtype(at::kLong));
  const int32_t* ap = acc.data_ptr<int32_t>();
  const int64_t* bp = bias.data_ptr<int64_t>();
  float* sp = s.data_ptr<float>();
  int64_t* vp = v_out.data_ptr<int64_t>();
  const int64_t thr = vth << 6, keep_u = 4095 - du, keep_v = 4096 - dv;
  std::atomic<int64_t> wraps{0}, clips{0};
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, T));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    int64_t nw = 0, nc = 0;
    for (int64_t m = m0; m < m1; ++m) {
      int64_t u = 0, v = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t x = factor * int64_t(ap[t * M + m]);
        const int64_t a = exp >= 0 ? (x << exp) : (x >> -exp);  // arithmetic shift: floor
        const int64_t u_raw = (u * keep_u) / 4096 + a * 64;      // C++ division truncates toward zero
        int64_t w = u_raw > kMax ? u_raw - 2 * kMax : u_raw;
        w = w <= -kMax ? u_raw + 2 * kMax : w;
        nw += w != u_raw;
        u = w;
        const int64_t v_raw = (v * keep_v) / 4096 + u + bp[m];
        v = std::min(std::max(v_raw, -kMax + 1), kMax - 1);
        nc += v != v_raw;
        float spike = 0.0f;
        if (!readout && v > thr) {
          spike = 1.0f;
          v = 0;
        }
        sp[t * M + m] = spike;
      }
      vp[m] = v;
    }
    wraps += nw;
    clips += nc;
  });
  return {s, v_out, wraps.load(), clips.load()};
}

int64_t version() { return kVersion; }

}  // namespace snn_sparse

// The library's name: snn_sparse in snn._C; a build on its own (snn.sparse.kernels, when snn._C lacks these ops or
// carries another version of them) names it after its source hash, so both can live in one process.
#ifndef SNN_SPARSE_LIB
#define SNN_SPARSE_LIB snn_sparse
#endif
#define SNN_SPARSE_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)
#define SNN_SPARSE_LIBRARY_IMPL(ns, k, m) TORCH_LIBRARY_IMPL(ns, k, m)

SNN_SPARSE_LIBRARY(SNN_SPARSE_LIB, m) {
  m.def("version() -> int", &snn_sparse::version);
  m.def("pack_rows(Tensor x) -> (Tensor, int, bool)");
  m.def("unpack_rows(Tensor bits, int K, ScalarType dtype) -> Tensor");
  m.def("tile_weight(Tensor w) -> Tensor");
  m.def("event_linear(Tensor x, Tensor wtile, int N, Tensor? bias, bool pack) -> (Tensor, Tensor, int, bool)");
  m.def("event_grad_weight(Tensor bits, int K, Tensor g) -> Tensor");
  m.def("event_conv2d(Tensor x, Tensor wtile, int O, int kh, int kw, Tensor? bias, int ph, int pw) -> Tensor");
  m.def("cuba_fixed(Tensor acc, int factor, int exp, int du, int dv, int vth, Tensor bias, bool readout) -> "
        "(Tensor, Tensor, int, int)");
}

SNN_SPARSE_LIBRARY_IMPL(SNN_SPARSE_LIB, CPU, m) {
  m.impl("pack_rows", &snn_sparse::pack_rows);
  m.impl("unpack_rows", &snn_sparse::unpack_rows);
  m.impl("tile_weight", &snn_sparse::tile_weight);
  m.impl("event_linear", &snn_sparse::event_linear);
  m.impl("event_grad_weight", &snn_sparse::event_grad_weight);
  m.impl("event_conv2d", &snn_sparse::event_conv2d);
  m.impl("cuba_fixed", &snn_sparse::cuba_fixed);
}
