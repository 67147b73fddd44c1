"""Spike-sparse (event-driven) computation on the CPU: layers whose work follows the input spikes.

* :mod:`.kernels`: the compiled kernels (bits, event-driven Linear forward and weight gradient, Lava's
  fixed-point neuron) and their torch references;
* :mod:`.calibration`: the firing rate below which the event path is faster here, measured once and cached;
* :mod:`.linear`: :func:`spike_linear` and :class:`EventLinear` (training and inference);
* :mod:`.inference`: :class:`SparseNet`, a trained network with a dense/sparse/auto path per layer;
* :mod:`.int8`: :class:`Int8Net`, the network in Loihi's int8 fixed point, equal to the Loihi emulator.
"""
from .calibration import calibrate, crossover
from .inference import SparseLinear, SparseNet
from .int8 import Int8Net
from .linear import EventLinear, spike_linear

__all__ = ["calibrate", "crossover", "EventLinear", "spike_linear", "SparseNet", "SparseLinear", "Int8Net"]
