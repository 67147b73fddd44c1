r"""Loihi 2 form of a network: lowering to CUBA layers, fixed-point quantizer, and a bit-accurate torch emulation.

Three steps, each a plain function over small dataclasses, one module each:

1. :func:`lower` (:mod:`.lowering`) turns an ``nn.Sequential`` of affine layers and snn neurons into a
   :class:`CubaNet` of float :class:`CubaLayer` s (one per neuron layer), Lava's CUBA LIF
   (``lava.proc.lif.process.LIF``); the equations and the mapping of snn's neurons are in :mod:`.lowering`,
   which looks every layer up by its exact class in :mod:`snn.export.registry`.

2. :func:`quantize` (:mod:`.quantizer`) turns a :class:`CubaNet` into a :class:`FixedNet` in the ranges of
   Lava's ``PyLifModelBitAcc`` and fixed-point ``Dense`` (:data:`RANGES`, in :mod:`.constants`).

3. :func:`emulate_fixed` (:mod:`.emulate`) runs a :class:`FixedNet` with exactly Lava's integer arithmetic,
   batched, on any device, with every rounding written as a straight-through estimator so that
   :class:`QATNet` (:mod:`.qat`) can fine-tune the float weights through the deployed arithmetic.
   :func:`emulate_float` runs a :class:`CubaNet` with Lava's floating-point model.

Everything runs on snn's timeline: the output at step ``t`` is the response to the input at step ``t``
(Lava adds one step per connection; :mod:`snn.export.lava` removes it).
"""
from .constants import RANGES
from .emulate import emulate_fixed, emulate_float, floor_shift, trunc_div, wrap24
from .lowering import (CubaLayer, CubaNet, CubaParams, LoweringError, Recurrent, SumPool2d, is_dropout,
                       iter_sequential, lower, lsm_as_sequential, plain_forward, supported_layers)
from .qat import QATNet
from .quantizer import FixedLayer, FixedNet, LoihiRangeError, quantize

__all__ = [
    "SumPool2d", "Recurrent", "CubaLayer", "CubaNet", "CubaParams", "FixedLayer", "FixedNet", "LoweringError",
    "LoihiRangeError", "RANGES", "supported_layers", "lower", "quantize", "emulate_float", "emulate_fixed",
    "QATNet", "wrap24", "lsm_as_sequential",
]
