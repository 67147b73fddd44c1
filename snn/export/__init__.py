"""Export to neuromorphic simulators.

- :mod:`snn.export.loihi`: lowering to Loihi's CUBA LIF form, fixed-point quantizer, bit-accurate emulation, QAT.
- :mod:`snn.export.lava`: run the lowered network in lava-nc (``floating_pt`` / ``fixed_pt``).
- :mod:`snn.export.nir`: ``to_nir`` / ``from_nir``.
- :mod:`snn.export.lava_compat`: the one place that makes lava-nc 0.10.0 import on Python 3.11.

Lava and NIR are optional: they are imported only when these modules are used.
"""
from .loihi import (CubaNet, FixedNet, LoihiRangeError, LoweringError, QATNet, Recurrent, SumPool2d, emulate_fixed,
                    emulate_float, lower, quantize)

__all__ = ["lower", "quantize", "emulate_fixed", "emulate_float", "QATNet", "CubaNet", "FixedNet", "Recurrent",
           "SumPool2d", "LoweringError", "LoihiRangeError"]
