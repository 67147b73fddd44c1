// Fused multi-step neuron kernels on the CPU (OpenMP). Declarations; one algorithm per
// file: lif.cpp, alif.cpp, cubalif.cpp. Instantiated for float and double.
#pragma once

#include "neuron_params.h"

namespace snn {
namespace cpu {

template <typename T> void lif_forward(const LifForward<T>& a, const LifParams& p, int threads);
template <typename T> void lif_backward(const LifBackward<T>& a, const LifParams& p, int threads);
template <typename T> void alif_forward(const AlifForward<T>& a, const AlifParams& p, int threads);
template <typename T> void alif_backward(const AlifBackward<T>& a, const AlifParams& p, int threads);
template <typename T> void cubalif_forward(const CubaForward<T>& a, const CubaParams& p, int threads);
template <typename T> void cubalif_backward(const CubaBackward<T>& a, const CubaParams& p, int threads);

}  // namespace cpu
}  // namespace snn
