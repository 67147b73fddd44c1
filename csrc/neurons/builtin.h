// The built-in neuron step functors, compiled into snn._C (bindings.cpp) and its CUDA part (cuda/neurons.cu).
// X(functor) once per functor; each is named in its spec (snn/neurons/<name>.py: CppStep(functor, header)).
#pragma once

#include "neurons/alif.h"
#include "neurons/cubalif.h"
#include "neurons/dsr.h"
#include "neurons/eif.h"
#include "neurons/izhikevich.h"
#include "neurons/lif.h"
#include "neurons/qif.h"

#define SNN_BUILTIN_NEURONS(X) X(LIFStep) X(ALIFStep) X(CUBALIFStep) X(QIFStep) X(EIFStep) X(IzhikevichStep) \
  X(DSRStep)
