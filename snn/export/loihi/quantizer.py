r"""The Loihi 2 fixed-point quantizer: :func:`quantize`, :class:`FixedLayer`, :class:`FixedNet`, range checks.

:func:`quantize` turns a :class:`~snn.export.loihi.CubaNet` into a :class:`FixedNet` in the ranges of Lava's
``PyLifModelBitAcc`` and fixed-point ``Dense`` (:data:`~snn.export.loihi.constants.RANGES`): per layer a scale
``s`` maps float potentials to integers; weights become 8-bit mantissas ``m`` (Lava weight ``2m``, sign mode
MIXED) with a shared exponent ``e``; ``du``, ``dv`` become 12-bit integers; the bias becomes ``mant << exp``.

Threshold: Lava fires on ``v > (vth << 6)``. The scale is chosen so that the float threshold lands exactly on an
integer potential, ``s·V_th = 64·vth + δ``: ``δ = 0`` for a strict layer (``V > V_th ⟺ v > 64·vth``) and
``δ = 1`` for a layer that fires on ``V >= V_th`` (in integers ``v >= 64·vth + 1 ⟺ v > 64·vth``), so the
integer network keeps the layer's own comparison.

Non-finite weights or parameters are refused naming the layer; values outside Loihi's ranges raise
:class:`LoihiRangeError` unless ``clip=True`` (then they are clipped and counted in ``report``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .constants import DECAY_UNITY, RANGES
from ...checks import check_bool, check_int
from .lowering import CubaLayer, CubaNet, DenseShape, NetShape, check_finite_net, check_lowered

VTH_TARGET = 512            # quantizer aims for vth >= this (threshold rounding error <= 0.1%)


class LoihiRangeError(ValueError):
    """A value outside Loihi's fixed-point ranges."""


@dataclass
class FixedLayer(DenseShape):
    """One layer in Loihi fixed point (the values Lava's processes get).

    ``weight``: Lava's 8-bit weights as integers (``2 × mantissa``); ``weight_exp`` the shared exponent;
    ``du``, ``dv``: 12-bit; ``vth``: 17-bit; ``bias_mant``/``bias_exp`` per neuron; ``scale``: integer
    potential per float potential unit (for reading potentials back).
    """

    name: str
    weight: torch.Tensor
    weight_exp: int
    bias_mant: torch.Tensor
    bias_exp: torch.Tensor
    du: int
    dv: int
    vth: int
    scale: float
    rec_weight: torch.Tensor | None = None
    rec_weight_exp: int = 0
    out_shape: tuple = ()
    readout: bool = False


@dataclass
class FixedNet(NetShape):
    in_shape: tuple
    layers: list[FixedLayer]
    input_bits: int = 0
    report: dict = field(default_factory=dict)


class _Ranges:
    """Checks values against :data:`RANGES`; raises, or clips and counts when ``clip``."""

    def __init__(self, clip: bool):
        self.clip, self.clipped = clip, {}

    def __call__(self, layer: str, what: str, value: torch.Tensor | int, rng=None):
        lo, hi = rng or RANGES[what.split(" ")[0]]
        t = torch.as_tensor(value)
        bad = (t < lo) | (t > hi)
        n = int(bad.sum())
        if n == 0:
            return value
        if not self.clip:
            worst = t[bad].flatten()[0].item()
            raise LoihiRangeError(f"layer {layer}: {what} = {worst} is outside Loihi's range [{lo}, {hi}] "
                                  f"({n} value(s)); pass clip=True to clip")
        self.clipped[f"{layer}.{what}"] = self.clipped.get(f"{layer}.{what}", 0) + n
        return t.clamp(lo, hi) if isinstance(value, torch.Tensor) else int(t.clamp(lo, hi))


def _weight_exp_for(w_max: float, scale: float) -> int:
    """Smallest exponent e with max |w|·scale / (2·64·2^e) <= 127 (mantissa fits 8 bits)."""
    if w_max == 0:
        return 0
    return math.ceil(math.log2(w_max * scale / (2 * 64 * 127)) - 1e-12)


def _threshold_and_scale(L: CubaLayer, scale: float, delta: int, check) -> tuple[int, float]:
    """The integer threshold ``k`` and the scale ``s' <= scale`` with ``s'·V_th = 64·k + delta``: Lava's
    ``v > 64·k`` is then ``v > s'·V_th`` (strict, ``delta = 0``) or ``v >= s'·V_th`` (``delta = 1``) on integer
    potentials. ``k`` must lie in [1, 2^17 - 1] (a threshold of 0 would give the scale 0)."""
    k = math.floor((L.vth * scale - delta) / 64)
    k = int(check(L.name, "vth", k, (1, RANGES["vth"][1])))
    return k, (64 * k + delta) / L.vth


def _quantize_weight(w, scale, exp, layer, what, check):
    """Lava weights ``2·round(w·scale / (2·64·2^exp))`` (Lava applies ``<< exp`` and ``<< 6``)."""
    m = torch.round(w * scale / (2 * 64 * 2.0 ** exp))
    return 2 * check(layer, f"{what} mantissa", m, RANGES["weight_mantissa"]).to(torch.float64)


def _quantize_bias(b_int: torch.Tensor, layer, check):
    """``b ≈ mant << exp`` per neuron, with the smallest exp in [0, 7] whose mantissa fits 13 bits."""
    lo, hi = RANGES["bias_mant"]
    e_max = RANGES["bias_exp"][1]
    exp = torch.full_like(b_int, -1.0)
    for e in range(e_max + 1):
        m = torch.round(b_int / 2 ** e)
        exp = torch.where((exp < 0) & (m >= lo) & (m <= hi), torch.full_like(exp, e), exp)
    if bool((exp < 0).any()):
        check(layer, "bias (integer units)", b_int[exp < 0], (lo << e_max, hi << e_max))
        exp = torch.where(exp < 0, torch.full_like(exp, e_max), exp)
    mant = torch.round(b_int / 2 ** exp).clamp(lo, hi)
    return mant.long(), exp.long()


def _quantize_readout(L: CubaLayer, w: torch.Tensor, check) -> FixedLayer:
    """A readout layer: the scale puts one step's largest possible |input| at 2^17, so the potential
    (clipped by Lava at ±(2^23 - 1)) holds 64 fully active steps; the threshold is the largest Lava allows."""
    step_max = float((w.abs().sum(1) + L.bias.abs()).max())
    scale = 2.0 ** 17 / step_max if step_max > 0 else 1.0
    lo_e, hi_e = RANGES["weight_exp"]
    wexp = min(max(_weight_exp_for(float(w.abs().max()), scale), lo_e), hi_e)
    mant, bexp = _quantize_bias(L.bias * scale, L.name, check)
    return FixedLayer(name=L.name, weight=_quantize_weight(w, scale, wexp, L.name, "weight", check), weight_exp=wexp,
                      bias_mant=mant, bias_exp=bexp, du=DECAY_UNITY - 1, dv=0, vth=RANGES["vth"][1], scale=scale,
                      out_shape=L.out_shape, readout=True)


def quantize(net: CubaNet, clip: bool = False, vth_target: int = VTH_TARGET) -> FixedNet:
    """Quantize a lowered network into Loihi 2 fixed point (see the module docstring for the scheme).

    The scale of each layer is the largest that keeps the weight mantissas in 8 bits for the smallest
    weight exponent giving ``vth >= vth_target``. Out-of-range values raise :class:`LoihiRangeError`
    naming the layer, value and range; with ``clip=True`` they are clipped and counted in ``report``.
    """
    check_lowered(net, (CubaNet,), "quantize", "from snn.export.lower")
    clip = check_bool(clip, "clip", "quantize")
    vth_target = check_int(vth_target, "vth_target", "quantize", 1, RANGES["vth"][1])
    check_finite_net(net)
    check = _Ranges(clip)
    layers, in_scale = [], (2 ** net.input_bits - 1) if net.input_bits else 1
    for L in net.layers:
        w = L.weight / in_scale if L is net.layers[0] else L.weight
        if L.readout:
            layers.append(_quantize_readout(L, w, check))
            continue
        if not L.vth > 0:
            raise LoihiRangeError(f"layer {L.name}: threshold vth = {L.vth} must be > 0 to be quantized (it sets the "
                                  f"layer's scale)")
        delta = 0 if L.strict else 1
        w_max = float(w.abs().max()) if w.numel() else 0.0
        if L.rec_weight is not None and L.rec_weight.numel():
            w_max = max(w_max, float(L.rec_weight.abs().max()))
        lo_e, hi_e = RANGES["weight_exp"]
        scale = None
        for e in range(lo_e, hi_e + 1):
            s = (2 * 64 * 127 * 2.0 ** e / w_max) if w_max > 0 else 64.0 * (vth_target + 1) / L.vth
            if (L.vth * s - delta) / 64 >= vth_target or e == hi_e:
                scale = s
                break
        vth_max = RANGES["vth"][1]
        if L.vth * scale / 64 > vth_max:       # weights tiny against the threshold: cap the scale
            scale = vth_max * 64 / L.vth
        vth, scale = _threshold_and_scale(L, scale, delta, check)
        wexp = check(L.name, "weight_exp", _weight_exp_for(float(w.abs().max()) if w.numel() else 0, scale), None)
        weight = _quantize_weight(w, scale, wexp, L.name, "weight", check)
        rec, rexp = None, 0
        if L.rec_weight is not None:
            rexp = check(L.name, "weight_exp", _weight_exp_for(float(L.rec_weight.abs().max()), scale), None)
            rec = _quantize_weight(L.rec_weight, scale, rexp, L.name, "rec_weight", check)
        du = check(L.name, f"du (4096·{L.du:g} - 1)", round(L.du * DECAY_UNITY) - 1, None)
        dv = check(L.name, f"dv (4096·{L.dv:g})", round(L.dv * DECAY_UNITY), None)
        mant, bexp = _quantize_bias(L.bias * scale, L.name, check)
        layers.append(FixedLayer(name=L.name, weight=weight, weight_exp=int(wexp), bias_mant=mant, bias_exp=bexp,
                                 du=int(du), dv=int(dv), vth=int(vth), scale=scale, rec_weight=rec,
                                 rec_weight_exp=int(rexp), out_shape=L.out_shape))
    summary = [{"name": L.name, "weight_exp": L.weight_exp, "vth": L.vth, "du": L.du, "dv": L.dv, "scale": L.scale,
                "readout": L.readout} for L in layers]
    return FixedNet(in_shape=net.in_shape, layers=layers, input_bits=net.input_bits,
                    report={"clipped": check.clipped, "n_clipped": sum(check.clipped.values()), "layers": summary})
