"""snn: spiking neural networks in PyTorch with compiled kernels, training methods, and neuromorphic export."""
from . import base, checks, functional, neuron, ops, surrogate
from . import recurrent
from .functional import reset

__version__ = "0.1.0"
__all__ = ["base", "checks", "functional", "neuron", "ops", "surrogate", "recurrent", "reset", "__version__"]

# Subpackages imported on first use (``snn.models.get(...)`` after ``import snn``), so that ``import snn``
# stays light.
_LAZY = ("bench", "continual", "data", "encoding", "export", "fused", "hebbian", "io", "layers", "lsm", "models",
         "monitor", "sparse", "spide", "train", "viz")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
