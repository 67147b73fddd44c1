// Host launchers of the fused CUDA neuron kernels (csrc/cuda/*.cu). Raw device pointers,
// sizes and a cudaStream_t passed as void*: no torch and no CUDA headers needed to call
// them (csrc/bindings.cpp wraps them for torch when built with SNN_WITH_CUDA).
// Same math as the CPU kernels (csrc/neuron_math.h); errors throw std::runtime_error.
#pragma once

#include "neuron_params.h"

namespace snn {
namespace cuda {

template <typename T> void lif_forward(const LifForward<T>& a, const LifParams& p, void* stream);
template <typename T> void lif_backward(const LifBackward<T>& a, const LifParams& p, void* stream);
template <typename T> void alif_forward(const AlifForward<T>& a, const AlifParams& p, void* stream);
template <typename T> void alif_backward(const AlifBackward<T>& a, const AlifParams& p, void* stream);
template <typename T> void cubalif_forward(const CubaForward<T>& a, const CubaParams& p, void* stream);
template <typename T> void cubalif_backward(const CubaBackward<T>& a, const CubaParams& p, void* stream);

}  // namespace cuda
}  // namespace snn
