// pybind11/torch bindings of the fused neuron kernels -> module snn._C.
//
// Every built-in neuron (neurons/builtin.h) gets `<Functor>_forward`, `<Functor>_backward` and `<Functor>_info`
// from the one generic binding (neuron_binding.h); the CPU loops (cpu/scan.h) run CPU tensors, the CUDA launchers
// (cuda/neurons.cu, when built with CUDA) CUDA tensors. The neurons are instantiated in two translation units
// (neurons_a.cpp, neurons_b.cpp) so that they compile in parallel. Also the streaming-store controls of
// cpu/chunks.h.
#include <torch/extension.h>

#include "cpu/chunks.h"
#include "neuron_binding.h"
#include "neurons/builtin.h"

namespace snn::binding {
#define SNN_DECLARE_BIND(F) void bind_##F(pybind11::module_& m);
SNN_BUILTIN_NEURONS(SNN_DECLARE_BIND)
#undef SNN_DECLARE_BIND
}  // namespace snn::binding

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  m.doc() = "snn compiled neuron kernels (C++/OpenMP, and CUDA when built with it); see snn/ops/cpp_backend.py";
  snn::binding::bind_common(m);
#define SNN_BIND(F) snn::binding::bind_##F(m);
  SNN_BUILTIN_NEURONS(SNN_BIND)
#undef SNN_BIND
  m.def("streaming_isa", &snn::cpu::streaming_isa,
        "Streaming (non-temporal) stores in use: 2 AVX-512F, 1 AVX, 0 none (ordinary copies)");
  m.def(
      "set_stream_threshold",
      [](int64_t bytes) {
        TORCH_CHECK(bytes >= 0, "snn._C.set_stream_threshold: bytes must be >= 0, got ", bytes);
        const int64_t previous = snn::cpu::stream_threshold();
        snn::cpu::stream_threshold() = bytes;
        return previous;
      },
      "Outputs of at least this many bytes are written with streaming stores; returns the previous value",
      py::arg("bytes"));
}
