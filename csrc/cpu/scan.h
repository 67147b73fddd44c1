// The generic multi-step loops on the CPU (OpenMP, vectorised), for any neuron step functor F
// (csrc/neurons/*.h; contract in snn/neurons/spec.py). Each equals the torch reference scan
// (snn/functional/scan.py) over the spec's charge/reset: spikes bit-identical, states and gradients to rounding.
//
//   forward   per step: h, θ = F.charge(X[t], st);  m = h - θ;  S[t] = Θ(m)  (strict: m > 0);  F.reset(h, θ, S, st)
//             saved (when a gradient is needed): m and the functor's extra values, per step
//   backward  reverse in t, g = ∂L/∂st carried (from ∂L/∂st_last), g[record] += ∂L/∂v_seq[t];
//             s = Θ(m), σ = σ'(m);  ∂L/∂X[t] = F.backward(saved[t], s, σ, ∂L/∂S[t], keep, g, ...)
//             parameter gradients: per chunk of neurons a sum in double of the step's contributions,
//             reduced over chunk columns in order (bit-identical for any thread count)
//
// Blocking (cpu/parallel.h): one contiguous block of neurons per thread runs the whole time loop, chunk by
// chunk (cpu/chunks.h), with the state in the outputs that return it (st_last, ∂L/∂st0); large outputs are
// streamed. The per-chunk inner loops are compiled for AVX-512F, AVX2 and the baseline ISA.
#pragma once

#include <algorithm>
#include <vector>

#include "cpu/chunks.h"
#include "cpu/parallel.h"
#include "dispatch.h"
#include "neuron_math.h"
#include "scan_args.h"

namespace snn {
namespace cpu {

// One time step over a chunk: st[k][i] in place, spikes (and with SAVE the saved values) written.
template <typename Fn, bool STRICT, bool SAVE, typename T>
SNN_SIMD_CLONES void forward_chunk(const Fn f, const T* __restrict x, T* __restrict s, T* const* st_in,
                                   T* const* sv_in, int64_t len) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved;
  T* st[NS];
  T* sv[NV];
  for (int k = 0; k < NS; ++k) st[k] = st_in[k];
  for (int k = 0; k < NV; ++k) sv[k] = sv_in[k];
#pragma GCC ivdep
  for (int64_t i = 0; i < len; ++i) {
    T v[NS], w[NV];
    for (int k = 0; k < NS; ++k) v[k] = st[k][i];
    T h, theta;
    f.charge(x[i], v, h, theta, w);
    w[0] = h - theta;
    const T si = fire<STRICT>(w[0]);
    f.reset(h, theta, si, v);
    s[i] = si;
    for (int k = 0; k < NS; ++k) st[k][i] = v[k];
    if (SAVE)
      for (int k = 0; k < NV; ++k) sv[k][i] = w[k];
  }
}

// One reverse time step over a chunk: g[k][i] carried in place, ∂L/∂X written; with LEARN the parameter
// gradient contributions into gp[j][i], the state before the step restored from the previous step's saved
// values (FIRST: the initial state st0).
template <typename Fn, int K, bool STRICT, bool LEARN, bool FIRST, typename T>
SNN_SIMD_CLONES void backward_chunk(const Fn f, const T* const* sv_in, const T* const* prev_in,
                                    const T* __restrict gs, const T* __restrict x, T* __restrict gx,
                                    T* const* g_in, T* const* gp_in, int64_t len, T a, T c, T keep) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved, NL = Fn::kLearnable > 0 ? Fn::kLearnable : 1;
  const T* sv[NV];
  const T* pv[NV > NS ? NV : NS];
  T* g[NS];
  T* gp[NL];
  for (int k = 0; k < NV; ++k) sv[k] = sv_in[k];
  for (int k = 0; k < NS; ++k) g[k] = g_in[k];
  if (LEARN) {
    for (int k = 0; k < (FIRST ? NS : NV); ++k) pv[k] = prev_in[k];
    for (int j = 0; j < Fn::kLearnable; ++j) gp[j] = gp_in[j];
  }
#pragma GCC ivdep
  for (int64_t i = 0; i < len; ++i) {
    T w[NV], gv[NS], prev[NS], gpi[NL];
    for (int k = 0; k < NV; ++k) w[k] = sv[k][i];
    for (int k = 0; k < NS; ++k) gv[k] = g[k][i];
    if constexpr (LEARN) {
      if (FIRST) {
        for (int k = 0; k < NS; ++k) prev[k] = pv[k][i];
      } else {
        T wp[NV];
        for (int k = 0; k < NV; ++k) wp[k] = pv[k][i];
        f.restore(wp, fire<STRICT>(wp[0]), prev);
      }
    }
    const T m = w[0];
    gx[i] = f.template backward<LEARN>(w, fire<STRICT>(m), surrogate_grad<K>(m, a, c), gs[i], keep, gv, prev,
                                       LEARN ? x[i] : T(0), gpi);
    for (int k = 0; k < NS; ++k) g[k][i] = gv[k];
    if (LEARN)
      for (int j = 0; j < Fn::kLearnable; ++j) gp[j][i] = gpi[j];
  }
}

template <typename Fn, bool STRICT, bool SAVE, typename T>
void forward_loop(const ForwardArgs<T>& a, int threads) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved;
  const Fn f(a.params.v);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* st[NS];
    for (int k = 0; k < NS; ++k) {
      st[k] = a.state_last[k] + i0;  // the state lives in the output st_last
      copy_n(st[k], a.state0[k] + i0, len);
    }
    Sink<T> s(a.spikes, stream);
    std::vector<Sink<T>> sv;
    sv.reserve(NV);
    for (int k = 0; k < NV; ++k) sv.emplace_back(a.saved[k], stream);
    for (int64_t t = 0; t < a.steps; ++t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        T* stc[NS];
        T* svc[NV];
        for (int k = 0; k < NS; ++k) stc[k] = st[k] + c;
        for (int k = 0; k < NV; ++k) svc[k] = sv[k].dst(off);
        forward_chunk<Fn, STRICT, SAVE>(f, a.x + off, s.dst(off), stc, svc, m);
        s.flush(off, m);
        for (auto& w : sv) w.flush(off, m);
        record(a.v_seq, off, st[Fn::kRecord] + c, m, stream);
      });
    }
  });
}

template <typename Fn, int K, bool STRICT, bool LEARN, typename T>
void backward_loop(const BackwardArgs<T>& a, const StepOptions& o, int threads) {
  constexpr int NS = Fn::kStates, NV = Fn::kSaved, NL = Fn::kLearnable > 0 ? Fn::kLearnable : 1;
  const Fn f(a.params.v);
  const T sa = T(o.a), sc = T(o.c), keep = o.detach_reset ? T(0) : T(1);
  const bool stream = streams(a.steps, a.n, sizeof(T));
  const int64_t columns = chunk_columns(a.n);
  std::vector<double> partial(LEARN ? NL * columns : 0, 0.0);  // [learnable][chunk column]
  for_each_block(plan_blocks(a.n, a.steps, threads), a.n, [&](int64_t i0, int64_t i1) {
    const int64_t len = i1 - i0;
    T* g[NS];
    for (int k = 0; k < NS; ++k) {
      g[k] = a.grad_state0[k] + i0;  // the carried ∂L/∂st lives in the output ∂L/∂st0
      if (a.grad_last[k]) copy_n(g[k], a.grad_last[k] + i0, len);
      else std::fill(g[k], g[k] + len, T(0));
    }
    Sink<T> gx(a.grad_x, stream);
    std::vector<T> gpbuf(LEARN ? NL * kChunk : 0);
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      for_each_chunk(len, [&](int64_t c, int64_t m) {
        const int64_t off = t * a.n + i0 + c;
        if (a.grad_v_seq) add_into(g[Fn::kRecord] + c, a.grad_v_seq + off, m);
        const T* svc[NV];
        const T* prev[NV > NS ? NV : NS] = {};
        T* gc[NS];
        T* gp[NL] = {};
        for (int k = 0; k < NV; ++k) svc[k] = a.saved[k] + off;
        for (int k = 0; k < NS; ++k) gc[k] = g[k] + c;
        const T* x = LEARN ? a.x + off : nullptr;
        if (LEARN) {
          for (int j = 0; j < Fn::kLearnable; ++j) gp[j] = gpbuf.data() + j * kChunk;
          if (t == 0) {
            for (int k = 0; k < NS; ++k) prev[k] = a.state0[k] + i0 + c;
            backward_chunk<Fn, K, STRICT, LEARN, true>(f, svc, prev, a.grad_spikes + off, x, gx.dst(off), gc, gp,
                                                       m, sa, sc, keep);
          } else {
            for (int k = 0; k < NV; ++k) prev[k] = a.saved[k] + off - a.n;
            backward_chunk<Fn, K, STRICT, LEARN, false>(f, svc, prev, a.grad_spikes + off, x, gx.dst(off), gc, gp,
                                                        m, sa, sc, keep);
          }
          for (int j = 0; j < Fn::kLearnable; ++j) {  // in double, in index order
            double acc = 0.0;
            for (int64_t i = 0; i < m; ++i) acc += double(gp[j][i]);
            partial[j * columns + (i0 + c) / kChunk] += acc;
          }
        } else {
          backward_chunk<Fn, K, STRICT, LEARN, false>(f, svc, prev, a.grad_spikes + off, x, gx.dst(off), gc, gp, m,
                                                      sa, sc, keep);
        }
        gx.flush(off, m);
      });
    }
  });
  if (LEARN)
    for (int j = 0; j < Fn::kLearnable; ++j)
      a.grad_params[j] = ordered_sum(partial.begin() + j * columns, partial.begin() + (j + 1) * columns);
}

// Entry points (forward or backward by the arguments): the runtime options turned into template arguments.
template <template <typename, unsigned> class F, typename T>
void run(const ForwardArgs<T>& a, const StepOptions& o, int threads) {
  dispatch_flags<F<T, 0>::kFlags>(o.flags, [&](auto fl) {
    dispatch_bool(o.strict, [&](auto strict) {
      dispatch_bool(a.saved[0] != nullptr,
                    [&](auto save) { forward_loop<F<T, fl.value>, strict.value, save.value>(a, threads); });
    });
  });
}

template <template <typename, unsigned> class F, typename T>
void run(const BackwardArgs<T>& a, const StepOptions& o, int threads) {
  dispatch_flags<F<T, 0>::kFlags>(o.flags, [&](auto fl) {
    using Fn = F<T, fl.value>;
    dispatch_kind(o.surrogate, [&](auto k) {
      dispatch_bool(o.strict, [&](auto strict) {
        if constexpr (Fn::kLearnable > 0) {
          dispatch_bool(a.grad_params != nullptr, [&](auto learn) {
            backward_loop<Fn, k.value, strict.value, learn.value>(a, o, threads);
          });
        } else {
          backward_loop<Fn, k.value, strict.value, false>(a, o, threads);
        }
      });
    });
  });
}

}  // namespace cpu
}  // namespace snn
