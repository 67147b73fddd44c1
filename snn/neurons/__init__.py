"""Neuron specs (:mod:`.spec`) and their registry (:mod:`.registry`); one module per built-in family.

The neuron modules users build networks from are in :mod:`snn.neuron`; this package is what they, the
kernel backends (:mod:`snn.ops`) and the exporters read.
"""
from __future__ import annotations

from . import alif as _alif
from . import cubalif as _cubalif
from . import eif as _eif
from . import izhikevich as _izhikevich
from . import lif as _lif
from . import qif as _qif
from .registry import bind, get, is_bound, names, register, spec_of, specs
from .spec import CppStep, Flag, Learned, NeuronSpec, Param, SpecError, State, TritonStep

__all__ = ["NeuronSpec", "State", "Param", "Flag", "Learned", "CppStep", "TritonStep", "SpecError", "register",
           "get", "names", "specs", "bind", "spec_of", "is_bound"]

for _spec in (_lif.IF, _lif.LIF, _lif.PLIF, _alif.ALIF, _cubalif.CUBALIF, _qif.QIF, _eif.EIF,
              _izhikevich.IZHIKEVICH):
    register(_spec)
