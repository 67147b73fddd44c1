// The CUDA loops (cuda/scan.cuh) instantiated for every built-in neuron (neurons/builtin.h), float and double.
#include "cuda/scan.cuh"
#include "neurons/builtin.h"

namespace snn {
namespace cuda {

#define SNN_CUDA_INSTANTIATE(F)                                                       \
  template void run<F, float>(const ForwardArgs<float>&, const StepOptions&, void*);     \
  template void run<F, double>(const ForwardArgs<double>&, const StepOptions&, void*);   \
  template void run<F, float>(const BackwardArgs<float>&, const StepOptions&, void*);    \
  template void run<F, double>(const BackwardArgs<double>&, const StepOptions&, void*);
SNN_BUILTIN_NEURONS(SNN_CUDA_INSTANTIATE)

}  // namespace cuda
}  // namespace snn
