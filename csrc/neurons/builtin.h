// The built-in neuron step functors, compiled into snn._C (bindings.cpp) and its CUDA part (cuda/neurons.cu).
// X(functor) once per functor; each is named in its spec (snn/neurons/<name>.py: CppStep(functor, header)).
#pragma once

#include "neurons/alif.h"
#include "neurons/cubalif.h"
#include "neurons/lif.h"

#define SNN_BUILTIN_NEURONS(X) X(LIFStep) X(ALIFStep) X(CUBALIFStep)
