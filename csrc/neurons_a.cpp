// The bindings of the built-in neurons of group A (neurons/builtin.h), registered on snn._C by bindings.cpp.
#include "neuron_binding.h"
#include "neurons/builtin.h"

namespace snn::binding {
#define SNN_DEFINE_BIND(F) \
  void bind_##F(pybind11::module_& m) { bind<snn::F>(m, #F); }
SNN_BUILTIN_NEURONS_A(SNN_DEFINE_BIND)
#undef SNN_DEFINE_BIND
}  // namespace snn::binding
