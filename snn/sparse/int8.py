r"""Int8 inference as on Loihi 2: :class:`Int8Net`, a network in Lava's fixed point run event-driven on the CPU.

The network is lowered and quantised by the Loihi export path (:func:`snn.export.loihi.lower`,
:func:`~snn.export.loihi.quantize`): per layer 8-bit weight mantissas ``m`` (Lava weight ``2m``) with a shared
exponent ``e``, 12-bit decays, an integer threshold and bias. :class:`Int8Net` keeps the mantissas as int8 and
runs each layer as

    acc[t] = Σ_k m[:, k]·s[t, k]      int32; event-driven: only the inputs that spiked (``'sparse'``), or one exact
                                      float matmul (``'dense'``); ``'auto'`` picks by firing rate
    a[t]   = floor_shift(2·acc[t], e)
    then Lava's fixed-point CUBA LIF (``csrc/sparse_ops.cpp`` ``cuba_fixed``; see
    :mod:`snn.export.loihi.emulate` for the equations)

so its result equals :func:`snn.export.loihi.emulate_fixed` on the same :class:`~snn.export.loihi.FixedNet` exactly
(spikes, and a readout's final potential): integer sums do not depend on their order. It warns as the emulator
does when Lava's 24-bit arithmetic wraps or clips a value. A model the Loihi path cannot lower (max pooling, soft
reset, ALIF, ...) is refused with the lowering's error naming the layer; a recurrent layer has no int8 path here
(a clear error naming it; :func:`~snn.export.loihi.emulate_fixed` runs it).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..export.loihi import FixedNet, lower, quantize
from ..export.loihi.emulate import _fixed_layer_params, _input_ints, _warn_overflow
from ..export.loihi.lowering import check_input
from . import kernels
from .inference import PATHS
from .linear import Choice, event_refusal

__all__ = ["Int8Net"]


class _Int8Layer:
    """One fixed-point layer: int8 mantissas (tiled for the event kernel on first use) and its path choice."""

    def __init__(self, L, mode: str, crossover: float | None):
        who = f"layer {L.name!r}"
        if L.rec_weight is not None:
            raise ValueError(f"Int8Net: {who} is recurrent; the int8 event path runs feed-forward layers only "
                             f"(snn.export.loihi.emulate_fixed runs recurrent ones)")
        m = L.weight / 2
        if m.numel() and (not bool((m == torch.round(m)).all()) or float(m.min()) < -128 or float(m.max()) > 127):
            raise ValueError(f"Int8Net: {who}: its Lava weights are not 2 x int8 mantissas")
        self.L, self.mode = L, mode
        self.mant = m.round().clamp(-128, 127).to(torch.int8).contiguous()
        self.mant_f = self.mant.float()
        self.bias = _fixed_layer_params(L, "cpu").round().to(torch.int64)
        self.choice = Choice(f"Int8Net {who}", {"dense": "dense", "sparse": "event", "auto": "auto"}[mode], "dense",
                             crossover, event_name="sparse")
        self._tile = None

    def synaptic(self, s: torch.Tensor, x_max: float) -> torch.Tensor:
        """``Σ_k m[:, k]·s[:, k]`` (int32 ``[R, N]``) on the path of this call."""
        K = self.mant.shape[1]
        if 128.0 * x_max * K >= 2 ** 31:
            raise ValueError(f"{self.choice.who}: {K} inputs of up to {x_max:g} could overflow the int32 sums")
        path = self.choice.mode
        if path == "auto":
            self.choice.last_rate = float(torch.count_nonzero(s)) / max(1, s.numel())
            path = "event" if event_refusal(s) is None and \
                self.choice.last_rate < self.choice.rate_limit(s.shape[0], "forward") else "dense"
        self.choice.last_path = path
        if path == "event":
            if self._tile is None:
                self._tile = kernels.tile_weight(self.mant)
            return kernels.event_linear(s, self._tile, self.mant.shape[0])[0]
        if float(self.mant_f.abs().sum(1).max()) * x_max < 2 ** 24:   # every partial sum exact in float32
            return (s @ self.mant_f.t()).to(torch.int32)
        return (s.double() @ self.mant_f.double().t()).to(torch.int32)


class Int8Net(nn.Module):
    """A :class:`~snn.export.loihi.FixedNet` run with int8 weights, event-driven where the input is sparse; equal
    to :func:`snn.export.loihi.emulate_fixed` (see :mod:`snn.sparse.int8`).

    ``mode``: ``'dense'`` | ``'sparse'`` | ``'auto'`` for every layer, or a dict ``{layer name: mode}`` (the
    :class:`~snn.export.loihi.FixedNet` layer names; others ``'auto'``). :meth:`from_model` lowers and
    quantises a trained model first. The call returns what ``emulate_fixed`` returns: output spikes
    ``[T, B, *out_shape]`` (float64 0/1), or for a network with a readout its final potential ``[B, *out_shape]``
    in float units."""

    def __init__(self, net: FixedNet, mode="auto", *, crossover: float | None = None):
        super().__init__()
        if not isinstance(net, FixedNet):
            raise TypeError(f"Int8Net: net must be a snn.export.loihi.FixedNet (from quantize), got "
                            f"{type(net).__name__}; Int8Net.from_model(model, in_shape) lowers a model")
        names = [L.name for L in net.layers]
        if isinstance(mode, str):
            modes = {n: mode for n in names}
        elif isinstance(mode, dict):
            unknown = sorted(set(mode) - set(names))
            if unknown:
                raise KeyError(f"Int8Net: no layer named {unknown} in the quantised network; its layers: {names}")
            modes = {n: mode.get(n, "auto") for n in names}
        else:
            raise TypeError(f"Int8Net: mode must be one of {PATHS} or a dict {{layer name: mode}}, got "
                            f"{type(mode).__name__}")
        for n, m in modes.items():
            if m not in PATHS:
                raise ValueError(f"Int8Net: layer {n!r}: mode must be one of {PATHS}, got {m!r}")
            if m == "sparse" and not kernels.available():
                raise RuntimeError(f"Int8Net: layer {n!r}: mode 'sparse' asked for, but the event-driven kernels "
                                   f"cannot run here: {event_refusal(torch.empty(0))}")
        self.net = net
        self._layers = [_Int8Layer(L, modes[L.name], crossover) for L in net.layers]
        kernels.library()  # the fixed-point neuron loop is compiled; a clear error here when it cannot be

    @classmethod
    def from_model(cls, model: nn.Module, in_shape, *, input_bits: int = 0, clip: bool = False, mode="auto",
                   crossover: float | None = None) -> "Int8Net":
        """Lower (:func:`~snn.export.loihi.lower`) and quantise (:func:`~snn.export.loihi.quantize`) a trained
        model, then :class:`Int8Net` of the result."""
        return cls(quantize(lower(model, in_shape, input_bits=input_bits), clip=clip), mode, crossover=crossover)

    def paths(self) -> dict[str, dict]:
        """Per layer: its ``mode``, and the ``path`` (``'dense'``/``'sparse'``) and input ``rate`` of the last
        call."""
        return {lay.L.name: dict(mode=lay.mode, path={"event": "sparse"}.get(lay.choice.last_path,
                                                                              lay.choice.last_path),
                                 rate=lay.choice.last_rate) for lay in self._layers}

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        net = self.net
        check_input(net, x_seq, "Int8Net")
        if x_seq.device.type != "cpu":
            raise ValueError(f"Int8Net: runs CPU tensors, got one on {x_seq.device}")
        T, B = x_seq.shape[:2]
        s = _input_ints(x_seq, net.input_bits).reshape(T * B, -1).contiguous()
        x_max = float(2 ** net.input_bits - 1) if net.input_bits else 1.0
        for lay in self._layers:
            L = lay.L
            N = lay.mant.shape[0]
            acc = lay.synaptic(s, x_max)
            spikes, v, wraps, clips = kernels.cuba_fixed(acc.view(T, B * N), 2, L.weight_exp, L.du, L.dv, L.vth,
                                                         lay.bias.repeat(B), L.readout)
            _warn_overflow(L, wraps, clips)
            s, x_max = spikes.view(T * B, N), 1.0
        if L.readout:
            return (v.view(B, N).double() / L.scale).reshape(B, *L.out_shape)
        return s.double().reshape(T, B, *L.out_shape)
