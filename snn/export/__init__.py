"""Export to neuromorphic simulators.

- :mod:`snn.export.loihi`: lowering to Loihi's CUBA LIF form, fixed-point quantizer, bit-accurate emulation, QAT.
- :mod:`snn.export.lava`: run the lowered network in lava-nc (``floating_pt`` / ``fixed_pt``), save/load it.
- :mod:`snn.export.nir`: ``to_nir`` / ``from_nir``, ``write_nir`` (atomic) / ``read_nir`` (clear errors on bad files).
- :mod:`snn.export.lava_compat`: the one place that makes lava-nc 0.10.0 import on Python 3.11.
- :mod:`snn.export.registry`: which classes each exporter maps, keyed on the exact class; ``register_nir`` /
  ``register_loihi`` add a mapping for a class of your own, ``refuse_export`` says it has none.

Lava and NIR are optional: they are imported only when a function that needs them is used. Every export refuses
NaN/Inf weights and parameters (naming the layer) and keeps each neuron's threshold comparison (``>=`` or ``>``).

>>> cuba = snn.export.lower(net, in_shape=(1, 28, 28), input_bits=8)    # float Loihi form
>>> fixed = snn.export.quantize(cuba)                                   # Loihi 2 fixed point
>>> out = snn.export.emulate_fixed(fixed, x_seq)                        # bit-exact, batched, CPU/GPU
>>> out_lava = snn.export.run_lava(fixed, x_seq)                        # Lava fixed_pt: the same
>>> graph = snn.export.to_nir(net, (1, 28, 28)); net2 = snn.export.from_nir(graph)
"""
import importlib

from ..recurrent import Delay, Recurrent
from .loihi import (CubaNet, CubaParams, FixedNet, LoihiRangeError, LoweringError, QATNet, SumPool2d, emulate_fixed,
                    emulate_float, lower, quantize)
from .registry import AFFINE, NIRContext, NIRImportContext, refuse_export, register_loihi, register_nir

_LAZY = {"run_lava": "lava", "save_lowered": "lava", "load_lowered": "lava", "to_nir": "nir", "from_nir": "nir",
         "write_nir": "nir", "read_nir": "nir"}

__all__ = ["lower", "quantize", "emulate_fixed", "emulate_float", "QATNet", "CubaNet", "FixedNet", "Recurrent", "Delay",
           "SumPool2d", "LoweringError", "LoihiRangeError", "register_nir", "register_loihi", "refuse_export",
           "NIRContext", "NIRImportContext", "CubaParams", "AFFINE", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
