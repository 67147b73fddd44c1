// The bindings of the built-in neurons of group A (neurons/builtin.h), registered on snn._C by bindings.cpp.
#include "neuron_binding.h"
#include "neurons/builtin.h"

namespace snn::binding {
SNN_DEFINE_NEURON_BINDINGS(SNN_BUILTIN_NEURONS_A)
}  // namespace snn::binding
