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

// Two groups of about equal compile time, one translation unit each (neurons_a.cpp, neurons_b.cpp).
#define SNN_BUILTIN_NEURONS_A(X) X(LIFStep) X(ALIFStep) X(CUBALIFStep) X(DSRStep)
#define SNN_BUILTIN_NEURONS_B(X) X(QIFStep) X(EIFStep) X(IzhikevichStep)
#define SNN_BUILTIN_NEURONS(X) SNN_BUILTIN_NEURONS_A(X) SNN_BUILTIN_NEURONS_B(X)
