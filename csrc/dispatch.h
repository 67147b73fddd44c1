// Compile-time dispatch helpers shared by the C++ and CUDA kernels: turn a runtime
// surrogate kind / flag into a template argument, so the per-element inner loops have
// no branches on configuration (and vectorise).
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "neuron_math.h"

namespace snn {

template <bool B>
using Bool = std::integral_constant<bool, B>;
template <int K>
using Kind = std::integral_constant<int, K>;

// fn(Bool<true>{}) or fn(Bool<false>{})
template <typename F>
inline void dispatch_bool(bool b, F&& fn) {
  if (b) fn(Bool<true>{});
  else fn(Bool<false>{});
}

// fn(Kind<k>{}) for a surrogate kind k in 0..4 (snn/surrogate.py KINDS).
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
                                  " (accepted 0..4, see snn.surrogate.KINDS)");
  }
}

}  // namespace snn
