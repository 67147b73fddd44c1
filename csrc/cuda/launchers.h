// Host launchers of the generic CUDA neuron loops (cuda/scan.cuh), for a step functor F (csrc/neurons/*.h):
// raw device pointers, sizes and a cudaStream_t passed as void*, so calling them needs no torch and no CUDA
// headers (neuron_binding.h wraps them for torch when built with SNN_WITH_CUDA). Instantiated for the built-in
// neurons in cuda/neurons.cu; errors throw std::runtime_error.
#pragma once

#include "scan_args.h"

namespace snn {
namespace cuda {

template <template <typename, unsigned> class F, typename T>
void run(const ForwardArgs<T>& a, const StepOptions& o, void* stream);
template <template <typename, unsigned> class F, typename T>
void run(const BackwardArgs<T>& a, const StepOptions& o, void* stream);

}  // namespace cuda
}  // namespace snn
