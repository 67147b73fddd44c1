"""snn: spiking neural networks in PyTorch with compiled kernels, training methods, and neuromorphic export."""
from . import base, checks, functional, neuron, ops, surrogate
from . import recurrent
from .functional import reset

__version__ = "0.1.0"
__all__ = ["base", "checks", "functional", "neuron", "ops", "surrogate", "reset", "__version__"]
