// Compile-time dispatch helpers shared by the C++ and CUDA kernels: turn a runtime surrogate kind / flag set
// into template arguments, so the per-element inner loops have no branches on configuration (and vectorise).
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "neuron_math.h"

namespace snn {

template <bool B>
using Bool = std::integral_constant<bool, B>;
template <int K>
using Kind = std::integral_constant<int, K>;
template <unsigned F>
using Flags = std::integral_constant<unsigned, F>;

// fn(Bool<true>{}) or fn(Bool<false>{})
template <typename F>
inline void dispatch_bool(bool b, F&& fn) {
  if (b) fn(Bool<true>{});
  else fn(Bool<false>{});
}

// fn(Kind<k>{}) for a surrogate kind k in 0..kNumSurrogates-1 (snn/surrogate.py).
template <typename F>
inline void dispatch_kind(int kind, F&& fn) {
  switch (kind) {
    case kSigmoid: fn(Kind<kSigmoid>{}); break;
    case kATan: fn(Kind<kATan>{}); break;
    case kFastSigmoid: fn(Kind<kFastSigmoid>{}); break;
    case kTriangle: fn(Kind<kTriangle>{}); break;
    case kErf: fn(Kind<kErf>{}); break;
    default:
      throw std::invalid_argument("snn: unknown surrogate kind " + std::to_string(kind) +
                                  " (accepted 0.." + std::to_string(kNumSurrogates - 1) + ", see snn.surrogate)");
  }
}

template <typename G, unsigned... I>
inline void dispatch_flags_impl(unsigned flags, G&& fn, std::integer_sequence<unsigned, I...>) {
  const bool found = ((flags == I ? (fn(Flags<I>{}), true) : false) || ...);
  if (!found) throw std::invalid_argument("snn: flags " + std::to_string(flags) + " out of range");
}

// fn(Flags<f>{}) for a flag set f of NF bits.
template <int NF, typename G>
inline void dispatch_flags(unsigned flags, G&& fn) {
  dispatch_flags_impl(flags, fn, std::make_integer_sequence<unsigned, (1u << NF)>{});
}

}  // namespace snn
