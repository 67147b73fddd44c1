r"""Loihi 2 form of a network: lowering to CUBA layers, fixed-point quantizer, and a bit-accurate torch emulation.

Three steps, each a plain function over small dataclasses:

1. :func:`lower` turns an ``nn.Sequential`` of affine layers and snn neurons into a :class:`CubaNet` of
   float :class:`CubaLayer` s (one per neuron layer). Every run of stateless layers between two neuron
   layers (``Linear``, ``Conv2d``, ``AvgPool2d``, :class:`SumPool2d`, ``Flatten``, eval-mode
   ``BatchNorm``, ``Dropout``) is folded into one affine map ``a = W s + b``, found by probing the layers
   with the identity basis. The neuron becomes Lava's CUBA LIF (``lava.proc.lif.process.LIF``)::

       U[t] = U[t-1]·(1 - du) + W·S_in[t] (+ W_rec·S[t-1])
       V[t] = V[t-1]·(1 - dv) + U[t] + bias
       S[t] = V[t] > vth;   V[t] = 0 where S[t]

   Mapping of snn neurons (all exact up to float rounding, except the threshold comparison)::

       CUBALIF           du, dv, vth, bias as given; a Linear bias is allowed only with du = 1
       IF  (v_reset=r)   du = 1, dv = 0,     vth = V_th - r, W, bias = b
       LIF (decay_input) du = 1, dv = 1/tau, vth = V_th - r, W/tau, bias = b/tau
       LIF (no decay_in) du = 1, dv = 1/tau, vth = V_th - r, W,     bias = b
       PLIF              as LIF with tau = 1/sigmoid(w)

   The potential is shifted by ``r`` (V' = V - r) so Lava's reset to 0 is snn's reset to ``r``.
   Where it cannot be exact: Lava fires on ``V > vth``, snn's IF/LIF on ``V >= V_th``; the two differ only
   when the potential lands exactly on the threshold. Soft reset (``v_reset=None``), ALIF and MaxPool have
   no Lava LIF counterpart and are rejected with a clear error.

   Affine layers after the last neuron (a classifier's ``Linear`` readout, trained on the mean over time of
   its output) become a non-spiking *readout* layer: du = 1, dv = 0 and an unreachable threshold, so its
   potential after T steps is ``Σ_t (W·S[t] + b)``, T times the mean readout; the emulators and
   :func:`snn.export.lava.run_lava` then return that final potential ``[B, *out_shape]`` instead of spikes.

   A :class:`snn.lsm.LiquidStateMachine` (ideal weights) is lowered as ``Linear(W_in) -> Recurrent(LIF)``
   (:func:`lsm_as_sequential`).

   A recurrent layer is any module with a ``recurrent_weight`` tensor ``[N, N]`` and a ``neuron``
   (e.g. :class:`Recurrent`): its input is ``I[t] = W·x[t] + W_rec·S[t-1]`` (the one-step delay is
   what Lava's recurrent ``Dense`` gives).

2. :func:`quantize` turns a :class:`CubaNet` into a :class:`FixedNet` in the ranges of Lava's
   ``PyLifModelBitAcc`` and fixed-point ``Dense`` (:data:`RANGES`): per layer a scale ``s`` maps float
   potentials to integers; weights become 8-bit mantissas ``m`` (Lava weight ``2m``, sign mode MIXED)
   with a shared exponent ``e``; the threshold ``vth = round(s·V_th / 64)`` (Lava compares with
   ``vth << 6``); ``du``, ``dv`` become 12-bit integers; the bias becomes ``mant << exp``.

3. :func:`emulate_fixed` runs a :class:`FixedNet` with exactly Lava's integer arithmetic::

       a    = (Σ_j w_ij s_j) << e          (>> -e, i.e. floor, for e <= 0)
       u    = trunc(u·(4096 - du - 1) / 4096) + (a << 6),  then wrapped into 24 bits
       v    = clip(trunc(v·(4096 - dv) / 4096) + u + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)
       s    = v > (vth << 6);  v = 0 where s

   batched, on any device, with every rounding written as a straight-through estimator so that
   :class:`QATNet` can fine-tune the float weights through the deployed arithmetic.
   :func:`emulate_float` runs a :class:`CubaNet` with Lava's floating-point model.

Everything runs on snn's timeline: the output at step ``t`` is the response to the input at step ``t``
(Lava adds one step per connection; :mod:`snn.export.lava` removes it).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import surrogate as sg
from ..base import MemoryModule
from ..neuron import ALIF, CUBALIF, IF, LIF, BaseNeuron

__all__ = [
    "SumPool2d", "Recurrent", "CubaLayer", "CubaNet", "FixedLayer", "FixedNet", "LoweringError",
    "LoihiRangeError", "RANGES", "SUPPORTED_LAYERS", "lower", "quantize", "emulate_float", "emulate_fixed",
    "QATNet", "wrap24", "lsm_as_sequential",
]

# ----------------------------------------------------------------------------------------------------------------
# Loihi 2 / Lava fixed-point constants (lava/proc/lif/models.py: AbstractPyLifModelFixed, PyLifModelBitAcc;
# lava/proc/dense/models.py: AbstractPyDenseModelBitAcc; lava/utils/weightutils.py)
# ----------------------------------------------------------------------------------------------------------------
DECAY_SHIFT = 12            # decays are d / 2**12
DECAY_UNITY = 1 << DECAY_SHIFT
VTH_SHIFT = 6               # effective threshold vth << 6
ACT_SHIFT = 6               # synaptic input a << 6 before it enters u
MAX_UV = 1 << 23            # u, v are 24-bit signed
RANGES = {
    "weight_mantissa": (-128, 127),   # Lava weight = 2 * mantissa (sign mode MIXED, 8 weight bits)
    "weight_exp": (-8, 7),
    "du": (0, 4095),                   # effective current decay (du + 1) / 4096
    "dv": (0, 4095),                   # effective voltage decay dv / 4096
    "vth": (0, (1 << 17) - 1),
    "bias_mant": (-4096, 4095),
    "bias_exp": (0, 7),
}
VTH_TARGET = 512            # quantizer aims for vth >= this (threshold rounding error <= 0.1%)


class LoweringError(TypeError):
    """A module that has no Lava/Loihi counterpart (or a configuration that cannot be mapped)."""


class LoihiRangeError(ValueError):
    """A value outside Loihi's fixed-point ranges."""


# ----------------------------------------------------------------------------------------------------------------
# Modules the lowering understands beyond torch's own
# ----------------------------------------------------------------------------------------------------------------
class SumPool2d(nn.Module):
    """Sum pooling (NIR's ``SumPool2d``): ``kernel_size**2 × AvgPool2d`` with the same arguments."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, x):
        lead = x.shape[:-3]
        y = F.avg_pool2d(x.reshape(-1, *x.shape[-3:]), self.kernel_size, self.stride, self.padding,
                         count_include_pad=True)
        return y.reshape(*lead, *y.shape[1:]) * (self.kernel_size[0] * self.kernel_size[1])

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Recurrent(MemoryModule):
    """A recurrent spiking layer: ``I[t] = x[t] + W_rec·S[t-1]``, ``S[t] = neuron(I[t])``.

    ``neuron`` is an snn neuron (driven one step at a time here); input ``[T, B, N]`` (``step_mode='m'``, the
    default) or ``[B, N]`` (``'s'``). The last spikes are state, cleared by :meth:`reset` (and so by
    ``snn.reset(net)``). This is the documented form :func:`lower` maps onto a Lava LIF with a recurrent
    ``Dense`` (any module with a ``recurrent_weight [N, N]`` and a ``neuron`` attribute is lowered the same way).
    """

    def __init__(self, neuron: BaseNeuron, n: int, weight: torch.Tensor | None = None, step_mode: str = "m"):
        super().__init__(step_mode)
        self.neuron = neuron
        w = torch.zeros(n, n) if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        if w.shape != (n, n):
            raise ValueError(f"Recurrent: weight must be [{n}, {n}], got {tuple(w.shape)}")
        self.recurrent_weight = nn.Parameter(w.clone())
        self.s = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0) if self.step_mode == "s" else x
        self.neuron.step_mode = "s"
        s = torch.zeros_like(x_seq[0]) if self.s is None else self.s
        out = []
        for x_t in x_seq:
            s = self.neuron(x_t + s @ self.recurrent_weight.t())
            out.append(s)
        self.s = s
        y = torch.stack(out)
        return y[0] if self.step_mode == "s" else y

    def reset(self):
        self.s = None
        self.neuron.reset()


# ----------------------------------------------------------------------------------------------------------------
# The float Loihi form
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class CubaLayer:
    """One CUBA LIF layer with its input connection, float (Lava ``floating_pt``) form.

    ``weight [N_out, N_in]`` and ``bias [N_out]`` are in potential units; ``rec_weight [N_out, N_out]`` or None.
    """

    name: str
    weight: torch.Tensor
    bias: torch.Tensor
    du: float
    dv: float
    vth: float
    rec_weight: torch.Tensor | None = None
    out_shape: tuple = ()
    readout: bool = False

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass
class CubaNet:
    """A lowered network: input shape (without T, B), input kind and the layers in order.

    ``input_bits = 0``: the input is binary spikes; ``> 0``: graded values in [0, 1], sent to Lava as
    ``input_bits``-bit integers (``round(x·(2^bits - 1))``, a graded-spike ``Dense`` with ``num_message_bits``).
    """

    in_shape: tuple
    layers: list[CubaLayer]
    input_bits: int = 0

    @property
    def out_shape(self) -> tuple:
        return self.layers[-1].out_shape

    @property
    def readout(self) -> bool:
        return self.layers[-1].readout


@dataclass
class FixedLayer:
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

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass
class FixedNet:
    in_shape: tuple
    layers: list[FixedLayer]
    input_bits: int = 0
    report: dict = field(default_factory=dict)

    @property
    def out_shape(self) -> tuple:
        return self.layers[-1].out_shape

    @property
    def readout(self) -> bool:
        return self.layers[-1].readout


# ----------------------------------------------------------------------------------------------------------------
# Lowering
# ----------------------------------------------------------------------------------------------------------------
_AFFINE = (nn.Linear, nn.Conv2d, nn.Conv1d, nn.AvgPool2d, SumPool2d, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
           nn.Dropout, nn.Identity, nn.Unflatten)
SUPPORTED_LAYERS = ("Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Unflatten",
                    "BatchNorm1d/2d (eval)", "Dropout (identity)", "Identity", "IF", "LIF", "PLIF", "CUBALIF",
                    "Recurrent (recurrent_weight + neuron)", "LiquidStateMachine (ideal weights)")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def is_dropout(m) -> bool:
    return isinstance(m, nn.Dropout) or (type(m).__name__ == "Dropout" and hasattr(m, "p"))


def is_lsm(m) -> bool:
    """A liquid state machine (:class:`snn.lsm.LiquidStateMachine`, duck-typed: ``w_in``, ``w_rec``, ``input_gain``)."""
    return all(hasattr(m, a) for a in ("w_in", "w_rec", "input_gain", "tau", "v_threshold", "v_reset"))


def lsm_as_sequential(lsm) -> nn.Sequential:
    """The reservoir as ``Linear(W_in·gain) -> Recurrent(LIF(decay_input=False), W_rec)``, its exact dynamics
    ``I[t] = x[t] @ W_in + s[t-1] @ W_rec`` (see :mod:`snn.lsm.reservoir`). Needs ideal weights: a device
    model's per-read noise has no deployable counterpart."""
    if getattr(lsm, "device_model", None) is not None:
        raise LoweringError("LiquidStateMachine with a device model: its per-read noise cannot be deployed; "
                            "export the ideal reservoir (device_model=None)")
    w_in = torch.as_tensor(lsm.w_in).detach().float() * float(lsm.input_gain)
    lin = nn.Linear(w_in.shape[0], w_in.shape[1], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w_in.t())
    neuron = LIF(tau=lsm.tau, v_threshold=lsm.v_threshold, v_reset=lsm.v_reset, decay_input=False,
                 backend="torch")
    w_rec = torch.as_tensor(lsm.w_rec).detach().float()
    return nn.Sequential(lin, Recurrent(neuron, w_rec.shape[0], w_rec.t()))


def iter_sequential(model: nn.Module):
    """Yield (name, module) of a (nested) Sequential in order; a non-Sequential model is one item;
    a liquid state machine is expanded by :func:`lsm_as_sequential`."""
    if is_lsm(model):
        model = lsm_as_sequential(model)
    if isinstance(model, nn.Sequential):
        for name, m in model.named_children():
            for sub, mm in iter_sequential(m):
                yield (f"{name}.{sub}" if sub else name), mm
    else:
        yield "", model


def plain_forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``m`` as its plain torch base class (no time folding): ``x`` is ``[N, ...]``."""
    if is_dropout(m) or isinstance(m, nn.Identity):
        return x
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn") and cls is not nn.Module and "forward" in cls.__dict__:
            return cls.forward(m, x)
    return m(x)


def _affine_map(ops, in_shape, name):
    """Fold stateless layers into ``y = W x + b`` (float64): ``W [N_out, N_in]``, ``b [N_out]``, out shape."""
    n_in = math.prod(in_shape)
    ops = [copy.deepcopy(m).double().eval() for m in ops]
    probe = torch.cat([torch.zeros(1, n_in, dtype=torch.float64), torch.eye(n_in, dtype=torch.float64)])
    y = probe.reshape(-1, *in_shape)
    with torch.no_grad():
        for m in ops:
            try:
                y = plain_forward(m, y)
            except RuntimeError as e:
                raise LoweringError(f"{name}: {type(m).__name__} does not accept input of shape "
                                    f"{tuple(in_shape)}: {e}") from e
    out_shape = tuple(y.shape[1:])
    y = y.reshape(n_in + 1, -1)
    b = y[0]
    return (y[1:] - b).t().contiguous(), b.clone(), out_shape


def _neuron_params(neuron, name):
    """(du, dv, vth, v_offset, weight_scale, bias) of the CUBA LIF that stands for ``neuron``."""
    who = f"{name} ({type(neuron).__name__})"
    if isinstance(neuron, ALIF):
        raise LoweringError(f"{who}: adaptive thresholds have no Lava LIF counterpart; supported: "
                            f"{', '.join(SUPPORTED_LAYERS)}")
    if isinstance(neuron, CUBALIF):
        return float(neuron.du), float(neuron.dv), float(neuron.v_threshold), 1.0, float(neuron.bias)
    if isinstance(neuron, LIF):  # IF and PLIF are LIFs
        if neuron.v_reset is None:
            raise LoweringError(f"{who}: soft reset (v_reset=None) cannot be mapped: Lava's LIF resets to 0; "
                                f"use a hard reset (v_reset=0.0)")
        k = float(torch.as_tensor(neuron.decay()).detach())
        vth = float(neuron.v_threshold) - float(neuron.v_reset)
        w_scale = k if (neuron.decay_input and not isinstance(neuron, IF)) else 1.0
        return 1.0, k, vth, w_scale, 0.0
    raise LoweringError(f"{who} is not a supported neuron")


def lower(model: nn.Module, in_shape, input_bits: int = 0) -> CubaNet:
    """Lower ``model`` (an ``nn.Sequential`` or a single neuron) for inputs of shape ``in_shape`` (no T, B).

    Raises :class:`LoweringError` naming an unsupported layer and listing :data:`SUPPORTED_LAYERS`.
    """
    in_shape, cur_shape = tuple(in_shape), tuple(in_shape)
    layers, pending = [], []
    for name, m in iter_sequential(model):
        label = name or type(m).__name__
        if isinstance(m, _AFFINE) or is_dropout(m):
            pending.append(m)
            continue
        rec = None
        if hasattr(m, "recurrent_weight") and hasattr(m, "neuron"):
            rec = torch.as_tensor(m.recurrent_weight).detach().double()
            neuron = m.neuron
        elif isinstance(m, BaseNeuron):
            neuron = m
        else:
            raise LoweringError(f"{label}: {type(m).__name__} cannot be lowered to Lava/Loihi; supported layers: "
                                f"{', '.join(SUPPORTED_LAYERS)}")
        if not pending:
            raise LoweringError(f"{label}: a neuron layer needs a connection (e.g. Linear) before it")
        w, b, out_shape = _affine_map(pending, cur_shape, label)
        pending = []
        du, dv, vth, w_scale, nbias = _neuron_params(neuron, label)
        if du != 1.0 and bool((b != 0).any()):
            raise LoweringError(f"{label}: a connection bias before a CUBALIF with du={du} != 1 cannot be mapped "
                                f"exactly (it would decay in the current); use bias=False or the neuron's bias")
        if rec is not None and rec.shape != (w.shape[0], w.shape[0]):
            raise LoweringError(f"{label}: recurrent_weight must be [{w.shape[0]}, {w.shape[0]}], "
                                f"got {tuple(rec.shape)}")
        layers.append(CubaLayer(name=label, weight=w * w_scale, bias=b * w_scale + nbias, du=du, dv=dv, vth=vth,
                                rec_weight=None if rec is None else rec * w_scale, out_shape=out_shape))
        cur_shape = out_shape
    if pending:
        if not layers:
            raise LoweringError("the model has no neuron layer to lower")
        w, b, out_shape = _affine_map(pending, cur_shape, "readout")
        layers.append(CubaLayer(name="readout", weight=w, bias=b, du=1.0, dv=0.0, vth=math.inf, out_shape=out_shape,
                                readout=True))
    if not layers:
        raise LoweringError("the model has no neuron layer to lower")
    return CubaNet(in_shape=in_shape, layers=layers, input_bits=int(input_bits))


# ----------------------------------------------------------------------------------------------------------------
# Quantizer
# ----------------------------------------------------------------------------------------------------------------
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
            raise LoihiRangeError(f"{layer}: {what} = {worst} is outside Loihi's range [{lo}, {hi}] "
                                  f"({n} value(s)); pass clip=True to clip")
        self.clipped[f"{layer}.{what}"] = self.clipped.get(f"{layer}.{what}", 0) + n
        return t.clamp(lo, hi) if isinstance(value, torch.Tensor) else int(t.clamp(lo, hi))


def _weight_exp_for(w_max: float, scale: float) -> int:
    """Smallest exponent e with max |w|·scale / (2·64·2^e) <= 127 (mantissa fits 8 bits)."""
    if w_max == 0:
        return 0
    return math.ceil(math.log2(w_max * scale / (2 * 64 * 127)) - 1e-12)


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
    check = _Ranges(clip)
    layers, in_scale = [], (2 ** net.input_bits - 1) if net.input_bits else 1
    for L in net.layers:
        w = L.weight / in_scale if L is net.layers[0] else L.weight
        if L.readout:
            layers.append(_quantize_readout(L, w, check))
            continue
        w_max = float(w.abs().max()) if w.numel() else 0.0
        if L.rec_weight is not None and L.rec_weight.numel():
            w_max = max(w_max, float(L.rec_weight.abs().max()))
        lo_e, hi_e = RANGES["weight_exp"]
        exp, scale = hi_e, None
        for e in range(lo_e, hi_e + 1):
            s = (2 * 64 * 127 * 2.0 ** e / w_max) if w_max > 0 else 64.0 * vth_target / L.vth
            if L.vth * s / 64 >= vth_target or e == hi_e:
                exp, scale = e, s
                break
        vth_max = RANGES["vth"][1]
        if L.vth * scale / 64 > vth_max:       # weights tiny against the threshold: cap the scale
            scale = vth_max * 64 / L.vth
        wexp = check(L.name, "weight_exp", _weight_exp_for(float(w.abs().max()) if w.numel() else 0, scale), None)
        weight = _quantize_weight(w, scale, wexp, L.name, "weight", check)
        rec, rexp = None, 0
        if L.rec_weight is not None:
            rexp = check(L.name, "weight_exp", _weight_exp_for(float(L.rec_weight.abs().max()), scale), None)
            rec = _quantize_weight(L.rec_weight, scale, rexp, L.name, "rec_weight", check)
        du = check(L.name, f"du (4096·{L.du:g} - 1)", round(L.du * DECAY_UNITY) - 1, None)
        dv = check(L.name, f"dv (4096·{L.dv:g})", round(L.dv * DECAY_UNITY), None)
        vth = check(L.name, "vth", round(L.vth * scale / 64), None)
        mant, bexp = _quantize_bias(L.bias * scale, L.name, check)
        layers.append(FixedLayer(name=L.name, weight=weight, weight_exp=int(wexp), bias_mant=mant, bias_exp=bexp,
                                 du=int(du), dv=int(dv), vth=int(vth), scale=scale, rec_weight=rec,
                                 rec_weight_exp=int(rexp), out_shape=L.out_shape))
    summary = [{"name": L.name, "weight_exp": L.weight_exp, "vth": L.vth, "du": L.du, "dv": L.dv, "scale": L.scale,
                "readout": L.readout} for L in layers]
    return FixedNet(in_shape=net.in_shape, layers=layers, input_bits=net.input_bits,
                    report={"clipped": check.clipped, "n_clipped": sum(check.clipped.values()), "layers": summary})


# ----------------------------------------------------------------------------------------------------------------
# Emulation
# ----------------------------------------------------------------------------------------------------------------
def _ste(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward ``y``, backward identity to ``x`` (straight-through)."""
    return x + (y - x).detach() if x.requires_grad else y


def trunc_div(x: torch.Tensor, d: int) -> torch.Tensor:
    """``sign(x)·(|x| >> log2 d)`` — numpy's shift of the magnitude, i.e. rounding toward zero."""
    return _ste(x / d, torch.trunc(x / d))


def floor_shift(x: torch.Tensor, e: int) -> torch.Tensor:
    """``x << e`` for e > 0, else the arithmetic ``x >> -e`` (floor), as fixed-point ``Dense`` does."""
    return x * 2.0 ** e if e > 0 else _ste(x / 2.0 ** -e, torch.floor(x / 2.0 ** -e))


def wrap24(x: torch.Tensor) -> torch.Tensor:
    """Lava's current wrap-around: x > 2^23 -> x - 2^24, then x <= -2^23 -> x + 2^24 (on the original x)."""
    y = torch.where(x > MAX_UV, x - 2 * MAX_UV, x)
    return torch.where(y <= -MAX_UV, x + 2 * MAX_UV, y)


def _spike(v: torch.Tensor, vth, surrogate) -> torch.Tensor:
    """``v > vth`` forward; surrogate gradient of ``(v - vth)/vth`` backward."""
    if v.requires_grad:
        return surrogate((v - vth) / max(float(vth), 1.0), strict=True)
    return (v > vth).to(v.dtype)


def _exact_matmul(x: torch.Tensor, w: torch.Tensor, x_max: float) -> torch.Tensor:
    """``x @ w.T`` (float64 result) for integer-valued operands, exactly: the product runs in float32 when no
    partial sum can reach 2^24 (and TF32 is off), else in float64."""
    fp32_exact = float(w.detach().abs().sum(1).max()) * x_max < 2 ** 24 and not (
        x.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)
    if fp32_exact and not (x.requires_grad or w.requires_grad):
        return (x.float() @ w.float().t()).double()
    return x.double() @ w.double().t()


def _fixed_layer_params(L: FixedLayer, device):
    bias = (L.bias_mant.double() * 2.0 ** L.bias_exp.double()).to(device)
    neg = L.bias_exp < 0
    if bool(neg.any()):  # Lava: right shift (floor) for a negative exponent
        bias = torch.where(neg.to(device), torch.floor(L.bias_mant.double().to(device) / 2.0 ** (-L.bias_exp)
                                                       .double().to(device)), bias)
    return bias


def _run_fixed_layer(a_ff: torch.Tensor, L: FixedLayer, w_rec, bias, surrogate, record):
    """Neuron loop of one fixed-point layer; ``a_ff [T, B, N]`` is the shifted synaptic input (before << 6)."""
    T = a_ff.shape[0]
    u = torch.zeros_like(a_ff[0])
    v = torch.zeros_like(a_ff[0])
    s = torch.zeros_like(a_ff[0])
    vth_eff = float(L.vth << VTH_SHIFT)
    out, vs = [], []
    for t in range(T):
        a = a_ff[t]
        if w_rec is not None:
            a = a + floor_shift(_exact_matmul(s, w_rec, 1.0), L.rec_weight_exp)
        u = wrap24(trunc_div(u * (DECAY_UNITY - L.du - 1), DECAY_UNITY) + a * 2.0 ** ACT_SHIFT)
        v = trunc_div(v * (DECAY_UNITY - L.dv), DECAY_UNITY) + u + bias
        v = v.clamp(-MAX_UV + 1, MAX_UV - 1)
        if not L.readout:
            s = _spike(v, vth_eff, surrogate)
            v = v * (1 - s)
        out.append(s)
        if record:
            vs.append(v.detach())
    return torch.stack(out), v, (torch.stack(vs) if record else None)


def _input_ints(x_seq: torch.Tensor, input_bits: int) -> torch.Tensor:
    """The integers the source sends: graded ``round(x·(2^bits - 1))`` or binary spikes (checked), kept in
    float32 (exact for these small integers) so a long input costs no float64 copy."""
    if input_bits:
        return torch.round(x_seq.float().clamp(0, 1) * (2 ** input_bits - 1))
    if x_seq.dtype != torch.bool and not bool(((x_seq == 0) | (x_seq == 1)).all()):
        raise ValueError("the network takes binary spikes (input_bits=0) but the input has values other than 0/1")
    return x_seq.float()


def emulate_fixed(net: FixedNet, x_seq: torch.Tensor, *, surrogate=None, all_layers: bool = False,
                  record_v: bool = False, weights: list | None = None):
    """Bit-accurate emulation of Lava's ``fixed_pt`` run of ``net`` on ``x_seq [T, B, *in_shape]``.

    Returns output spikes ``[T, B, *out_shape]`` (float64 0/1) on snn's timeline (for a readout network the
    readout's final potential ``[B, *out_shape]`` in float units, i.e. integer / scale), or the list of every
    layer's output with ``all_layers``; with ``record_v`` also the integer potentials after reset.
    ``weights`` optionally replaces each layer's ``(weight, rec_weight)`` with tensors carrying gradients
    (used by :class:`QATNet`).
    """
    surrogate = sg.get(surrogate)
    T, B = x_seq.shape[:2]
    s = _input_ints(x_seq, net.input_bits).reshape(T, B, -1)
    x_max = float(2 ** net.input_bits - 1) if net.input_bits else 1.0
    outs, vs = [], []
    for i, L in enumerate(net.layers):
        w, w_rec = weights[i] if weights is not None else (L.weight, L.rec_weight)
        w = w.to(s.device)
        a = floor_shift(_exact_matmul(s.reshape(T * B, -1), w, x_max), L.weight_exp).reshape(T, B, -1)
        s, v_last, v = _run_fixed_layer(a, L, None if w_rec is None else w_rec.to(s.device),
                                        _fixed_layer_params(L, s.device), surrogate, record_v)
        x_max = 1.0
        outs.append((v_last / L.scale).reshape(B, *L.out_shape) if L.readout else s.reshape(T, B, *L.out_shape))
        vs.append(v)
    res = outs if all_layers else outs[-1]
    return (res, vs) if record_v else res


def emulate_float(net: CubaNet, x_seq: torch.Tensor, *, all_layers: bool = False, surrogate=None):
    """Lava's ``floating_pt`` LIF/Dense arithmetic in float64 on snn's timeline (see the module docstring).

    Returns spikes ``[T, B, *out_shape]``, or for a readout network the final readout potential ``[B, *out_shape]``.
    """
    surrogate = sg.get(surrogate)
    T, B = x_seq.shape[:2]
    s = x_seq.double().reshape(T, B, -1)
    outs = []
    for L in net.layers:
        a_ff = (s.reshape(T * B, -1) @ L.weight.to(s.device, torch.float64).t()).reshape(T, B, -1)
        bias = L.bias.to(s.device, torch.float64)
        u = torch.zeros_like(a_ff[0])
        v = torch.zeros_like(u)
        sp = torch.zeros_like(u)
        out = []
        for t in range(T):
            a = a_ff[t]
            if L.rec_weight is not None:
                a = a + sp @ L.rec_weight.to(s.device, torch.float64).t()
            u = u * (1 - L.du) + a
            v = v * (1 - L.dv) + u + bias
            if not L.readout:
                sp = _spike(v, L.vth, surrogate)
                v = v * (1 - sp)
            out.append(sp)
        s = torch.stack(out)
        outs.append(v.reshape(B, *L.out_shape) if L.readout else s.reshape(T, B, *L.out_shape))
    return outs if all_layers else outs[-1]


# ----------------------------------------------------------------------------------------------------------------
# Quantization-aware fine-tuning
# ----------------------------------------------------------------------------------------------------------------
class QATNet(nn.Module):
    """Fine-tune a lowered network through the bit-accurate fixed-point emulation.

    The trainable parameters are the float weights of the :class:`CubaNet` (potential units). The forward
    quantizes them with the fixed scales and exponents of ``quantize(net)`` (``round`` and ``clamp`` as
    straight-through estimators), runs :func:`emulate_fixed` with surrogate spikes, and so gives exactly
    the deployed network's spikes. :meth:`to_fixed` returns the :class:`FixedNet` to deploy.
    """

    def __init__(self, net: CubaNet, surrogate=None, clip: bool = True):
        super().__init__()
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
