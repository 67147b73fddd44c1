"""Quantization-aware fine-tuning through the bit-accurate emulation: :class:`QATNet`."""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from ... import surrogate as sg
from .constants import RANGES
from .emulate import _ste, emulate_fixed
from .lowering import CubaNet, check_lowered
from .quantizer import FixedNet, quantize


class QATNet(nn.Module):
    """Fine-tune a lowered network through the bit-accurate fixed-point emulation.

    The trainable parameters are the float weights of the :class:`CubaNet` (potential units). The forward
    quantizes them with the fixed scales and exponents of ``quantize(net)`` (``round`` and ``clamp`` as
    straight-through estimators), runs :func:`emulate_fixed` with surrogate spikes, and so gives exactly
    the deployed network's spikes. :meth:`to_fixed` returns the :class:`FixedNet` to deploy.
    """

    def __init__(self, net: CubaNet, surrogate=None, clip: bool = True):
        super().__init__()
        check_lowered(net, (CubaNet,), "QATNet", "from snn.export.lower")
        self.fixed = quantize(net, clip=clip)
        self.surrogate = sg.get(surrogate)
        in_scale = (2 ** net.input_bits - 1) if net.input_bits else 1
        self.weights = nn.ParameterList()
        self.rec_weights = nn.ParameterList()
        self._has_rec = []
        for i, L in enumerate(net.layers):
            w = L.weight / in_scale if i == 0 else L.weight
            self.weights.append(nn.Parameter(w.clone().double()))
            self._has_rec.append(L.rec_weight is not None)
            if L.rec_weight is not None:
                self.rec_weights.append(nn.Parameter(L.rec_weight.clone().double()))

    def _lava_weights(self, w, scale, exp):
        m = w * scale / (2 * 64 * 2.0 ** exp)
        lo, hi = RANGES["weight_mantissa"]
        return 2 * _ste(m, torch.round(m).clamp(lo, hi))

    def quantized_weights(self):
        out, r = [], iter(self.rec_weights)
        for L, w, has_rec in zip(self.fixed.layers, self.weights, self._has_rec):
            wq = self._lava_weights(w, L.scale, L.weight_exp)
            rq = self._lava_weights(next(r), L.scale, L.rec_weight_exp) if has_rec else None
            out.append((wq, rq))
        return out

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return emulate_fixed(self.fixed, x_seq, surrogate=self.surrogate, weights=self.quantized_weights())

    def to_fixed(self) -> FixedNet:
        with torch.no_grad():
            q = self.quantized_weights()
        layers = [replace(L, weight=wq.detach().clone(), rec_weight=None if rq is None else rq.detach().clone())
                  for L, (wq, rq) in zip(self.fixed.layers, q)]
        return replace(self.fixed, layers=layers)
