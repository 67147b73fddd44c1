r"""Lowering a torch network to Loihi's float CUBA LIF form: :func:`lower`, :class:`CubaLayer`, :class:`CubaNet`.

:func:`lower` turns an ``nn.Sequential`` of affine layers and snn neurons into a :class:`CubaNet` of
float :class:`CubaLayer` s (one per neuron layer). Every run of stateless layers between two neuron
layers (``Linear``, ``Conv2d``, ``AvgPool2d``, :class:`SumPool2d`, ``Flatten``, eval-mode
``BatchNorm``, ``Dropout``) is folded into one affine map ``a = W s + b``, found by probing the layers
with the identity basis. The neuron becomes Lava's CUBA LIF (``lava.proc.lif.process.LIF``)::

    U[t] = U[t-1]·(1 - du) + W·S_in[t] (+ W_rec·S[t-1])
    V[t] = V[t-1]·(1 - dv) + U[t] + bias
    S[t] = V[t] > vth;   V[t] = 0 where S[t]

Mapping of snn neurons (all exact up to float rounding; each declared in its spec's ``exports``, the functions
in :mod:`snn.export.neurons`)::

    CUBALIF           du, dv, vth, bias as given; a Linear bias is allowed only with du = 1
    IF  (v_reset=r)   du = 1, dv = 0,     vth = V_th - r, W, bias = b
    LIF (decay_input) du = 1, dv = 1/tau, vth = V_th - r, W/tau, bias = b/tau
    LIF (no decay_in) du = 1, dv = 1/tau, vth = V_th - r, W,     bias = b
    PLIF              as LIF with tau = 1/sigmoid(w)

The potential is shifted by ``r`` (V' = V - r) so Lava's reset to 0 is snn's reset to ``r``.
Threshold comparison: Lava fires on ``V > vth``; snn's IF/LIF/PLIF fire on ``V >= V_th`` unless built with
``strict_threshold=True``. :class:`CubaLayer` keeps the neuron's comparison in ``strict``, and
:func:`lava_threshold` gives the threshold that makes Lava's ``>`` the neuron's own test in float64
(``V >= vth  ⟺  V > nextafter(vth, -inf)``); the fixed-point quantizer realises ``>=`` exactly in integers
(see :mod:`.quantizer`). Soft reset (``v_reset=None``), ALIF and MaxPool have no Lava LIF counterpart and
are rejected with a clear error; so are non-finite weights and parameters, naming the layer.

Every layer is looked up by its exact class in :mod:`snn.export.registry` (never ``isinstance``): a subclass
of LIF with other dynamics is refused, naming the layer, until its own mapping is registered with
:func:`snn.export.register_loihi`.

Affine layers after the last neuron (a classifier's ``Linear`` readout, trained on the mean over time of
its output) become a non-spiking *readout* layer: du = 1, dv = 0 and an unreachable threshold, so its
potential after T steps is ``Σ_t (W·S[t] + b)``, T times the mean readout; the emulators and
:func:`snn.export.lava.run_lava` then return that final potential ``[B, *out_shape]`` instead of spikes.

A :class:`snn.lsm.LiquidStateMachine` (ideal weights) is lowered as ``Linear(W_in) -> Recurrent.feedback(LIF)``
(:func:`lsm_as_sequential`).

A recurrent layer is a :class:`snn.recurrent.Recurrent`: its input connection ``W_in``, ``b`` (if any) is folded
with the layers before it into ``W``, ``b``, its neuron maps through its own spec, and ``W_rec`` becomes the
recurrent ``Dense``: ``I[t] = W·x[t] + b + W_rec·S[t-1]`` (the one-step delay is what Lava's recurrent ``Dense``
gives). A :class:`snn.recurrent.Delay` has no counterpart here and is refused, naming the layer.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import layers as snn_layers
from ...checks import check_int
from ...neuron import LIF, BaseNeuron
from ...recurrent import Delay
from ...recurrent import Recurrent as RecurrentLayer
from ..registry import AFFINE, LOIHI, LoweringError, Mapping, refuse_export, register_loihi


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


def Recurrent(neuron: BaseNeuron, n: int, weight=None, step_mode: str = "m", *, bias=None):  # noqa: N802
    """A recurrent layer around the neuron module ``neuron`` without an input connection:
    :meth:`snn.recurrent.Recurrent.feedback` (``I[t] = x[t] + W_rec·S[t-1] + b``), under the name this module
    has always given it. New code: :class:`snn.recurrent.Recurrent`."""
    return RecurrentLayer.feedback(neuron, n, weight, bias=bias, step_mode=step_mode)


# ----------------------------------------------------------------------------------------------------------------
# The float Loihi form
# ----------------------------------------------------------------------------------------------------------------
class NetShape:
    """``out_shape``/``readout`` of a lowered network (float and fixed-point forms): those of its last layer."""

    layers: list

    @property
    def out_shape(self) -> tuple:
        return self.layers[-1].out_shape

    @property
    def readout(self) -> bool:
        return self.layers[-1].readout


class DenseShape:
    """``n_in``/``n_out`` of a layer whose connection is ``weight [N_out, N_in]`` (float and fixed-point forms)."""

    weight: torch.Tensor

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass
class CubaLayer(DenseShape):
    """One CUBA LIF layer with its input connection, float (Lava ``floating_pt``) form.

    ``weight [N_out, N_in]`` and ``bias [N_out]`` are in potential units; ``rec_weight [N_out, N_out]`` or None.
    ``strict``: the neuron fires on ``V > vth`` (Lava's own test, CUBALIF, ``strict_threshold=True``) or, when
    False, on ``V >= vth`` (snn's IF/LIF/PLIF default); :func:`lava_threshold` maps it onto Lava's ``>``.
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
    strict: bool = True


def lava_threshold(L: CubaLayer) -> float:
    """The float64 threshold θ for which Lava's ``V > θ`` is the layer's own test on float64 potentials:
    ``θ = vth`` when ``L.strict``, else ``θ = nextafter(vth, -inf)`` (no float64 lies strictly between the two,
    so ``V >= vth ⟺ V > θ``)."""
    vth = float(L.vth)
    return vth if L.strict else float(np.nextafter(vth, -math.inf))


@dataclass
class CubaNet(NetShape):
    """A lowered network: input shape (without T, B), input kind and the layers in order.

    ``input_bits = 0``: the input is binary spikes; ``> 0``: graded values in [0, 1], sent to Lava as
    ``input_bits``-bit integers (``round(x·(2^bits - 1))``, a graded-spike ``Dense`` with ``num_message_bits``).
    """

    in_shape: tuple
    layers: list[CubaLayer]
    input_bits: int = 0


# ----------------------------------------------------------------------------------------------------------------
# Lowering
# ----------------------------------------------------------------------------------------------------------------
DROPOUT = (nn.Dropout, snn_layers.Dropout)


def supported_layers() -> list[str]:
    """The layer classes :func:`lower` maps (by exact class; see :mod:`snn.export.registry`)."""
    return LOIHI.supported()


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def is_dropout(m) -> bool:
    """A dropout layer (``nn.Dropout`` or :class:`snn.layers.Dropout`, exactly): the identity at inference."""
    return type(m) in DROPOUT


def is_lsm(m) -> bool:
    """A :class:`snn.lsm.LiquidStateMachine` (exactly that class)."""
    from ...lsm.reservoir import LiquidStateMachine

    return type(m) is LiquidStateMachine


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
    return nn.Sequential(lin, RecurrentLayer.feedback(neuron, w_rec.shape[0], w_rec.t()))


SEQUENTIAL = (nn.Sequential, snn_layers.SeqToANN)


def iter_sequential(model: nn.Module):
    """Yield (name, module) of a (nested) ``nn.Sequential`` / :class:`snn.layers.SeqToANN` in order; any other
    model is one item; a liquid state machine is expanded by :func:`lsm_as_sequential`."""
    if is_lsm(model):
        model = lsm_as_sequential(model)
    if type(model) in SEQUENTIAL:
        for name, m in model.named_children():
            for sub, mm in iter_sequential(m):
                yield (f"{name}.{sub}" if sub else name), mm
    else:
        yield "", model


def plain_forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``m`` as its plain torch base class (no time folding): ``x`` is ``[N, ...]``."""
    if is_dropout(m) or type(m) is nn.Identity:
        return x
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn") and cls is not nn.Module and "forward" in cls.__dict__:
            return cls.forward(m, x)
    return m(x)


def _affine_map(ops, in_shape):
    """Fold stateless layers ``ops`` (``(label, module)`` pairs) into ``y = W x + b`` (float64):
    ``W [N_out, N_in]``, ``b [N_out]``, out shape."""
    n_in = math.prod(in_shape)
    probe = torch.cat([torch.zeros(1, n_in, dtype=torch.float64), torch.eye(n_in, dtype=torch.float64)])
    y = probe.reshape(-1, *in_shape)
    with torch.no_grad():
        for label, m in ops:
            shape = tuple(y.shape[1:])
            try:
                y = plain_forward(copy.deepcopy(m).double().eval(), y)
            except RuntimeError as e:
                raise LoweringError(f"layer {label} ({type(m).__name__}) does not accept input of shape "
                                    f"{shape}: {e}") from e
    out_shape = tuple(y.shape[1:])
    y = y.reshape(n_in + 1, -1)
    b = y[0]
    return (y[1:] - b).t().contiguous(), b.clone(), out_shape


MAX_INPUT_BITS = 24             # graded input integers below 2^24: exact in the emulation's float32 input


def check_in_shape(in_shape, who: str) -> tuple:
    """``in_shape``, one sample's shape (no T, B), as a non-empty tuple of positive ints."""
    try:
        shape = tuple(int(s) for s in in_shape)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: in_shape must be a sequence of positive ints (one sample, no T, B), "
                        f"got {in_shape!r}") from None
    if not shape or any(s <= 0 for s in shape) or isinstance(in_shape, str):
        raise ValueError(f"{who}: in_shape must be a non-empty sequence of positive ints, got {in_shape!r}")
    return shape


def check_lowered(net, kinds: tuple, who: str, hint: str) -> None:
    """Refuse anything but a lowered network of one of ``kinds`` (``hint``: how to make one)."""
    if not isinstance(net, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{who}: net must be a {names} ({hint}), got {type(net).__name__}")


def check_input(net, x_seq, who: str) -> None:
    """``x_seq`` must be a real tensor ``[T, B, *net.in_shape]`` with T, B >= 1 and no NaN/Inf."""
    if not isinstance(x_seq, torch.Tensor) or x_seq.is_complex():
        raise TypeError(f"{who}: x_seq must be a real torch tensor [T, B, *in_shape], got "
                        f"{type(x_seq).__name__}{' (complex)' if isinstance(x_seq, torch.Tensor) else ''}")
    shape = tuple(x_seq.shape)
    if len(shape) < 2 or shape[2:] != tuple(net.in_shape) or 0 in shape[:2]:
        raise ValueError(f"{who}: x_seq must be [T, B, *{tuple(net.in_shape)}] with T, B >= 1 (the network's "
                         f"input shape), got shape {shape}")
    if x_seq.is_floating_point() and not bool(torch.isfinite(x_seq).all()):
        raise ValueError(f"{who}: x_seq has {int((~torch.isfinite(x_seq)).sum())} NaN/Inf value(s)")


def check_finite_module(m: nn.Module, label: str) -> None:
    """Refuse a module whose parameters or buffers hold NaN/Inf, naming the layer and the tensor."""
    for pname, t in itertools.chain(m.named_parameters(), m.named_buffers()):
        if t is not None and t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
            n = int((~torch.isfinite(t.detach())).sum())
            raise ValueError(f"layer {label} ({type(m).__name__}): {pname} has {n} non-finite value(s) (NaN/Inf); "
                             f"an export needs finite weights and parameters")


def check_finite_values(label: str, **values) -> None:
    """Refuse NaN/Inf in named scalars or tensors of one layer (``label``), naming the value."""
    for name, v in values.items():
        if v is None:
            continue
        t = torch.as_tensor(v.detach() if isinstance(v, torch.Tensor) else v, dtype=torch.float64)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"layer {label}: {name} is not finite ({int((~torch.isfinite(t)).sum())} NaN/Inf "
                             f"value(s)); an export needs finite weights and parameters")


def check_finite_net(net) -> None:
    """Refuse a lowered network (:class:`CubaNet` or fixed-point ``FixedNet``) with a NaN/Inf weight or
    parameter, naming the layer (a readout's infinite float threshold is its design, not an error)."""
    for L in net.layers:
        vals = {f.name: getattr(L, f.name) for f in fields(L)
                if f.name not in ("name", "out_shape", "readout", "strict")}
        if L.readout and isinstance(L, CubaLayer):
            vals.pop("vth")
        check_finite_values(f"{L.name} of the lowered network", **vals)


@dataclass(frozen=True)
class CubaParams:
    """The CUBA LIF that stands for one neuron layer (what a ``to_cuba`` mapping returns): decays ``du``, ``dv``,
    threshold ``vth``, the factor ``weight_scale`` on the layer's input connection (``W``, ``b``, ``W_rec``), the
    neuron's own ``bias`` and its comparison (``strict``: fires on ``V > vth``, else ``V >= vth``)."""

    du: float
    dv: float
    vth: float
    weight_scale: float = 1.0
    bias: float = 0.0
    strict: bool = True


def _recurrent_parts(m: RecurrentLayer, label: str):
    """``(input connection, neuron, W_rec, b_rec or None)`` of a :class:`snn.recurrent.Recurrent` (float64): its
    ``W_in``, ``b`` as a Linear folded with the layers before it; without one, ``b`` joins the feedback."""
    rec = m.recurrent_weight.detach().double()
    if m.weight is None:
        return [], m.neuron, rec, None if m.bias is None else m.bias.detach().double()
    lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(m.weight)
        if m.bias is not None:
            lin.bias.copy_(m.bias)
    return [(f"{label}.w_in", lin)], m.neuron, rec, None


def _neuron_params(neuron, name) -> CubaParams:
    """The :class:`CubaParams` of ``neuron`` (layer ``name``) through its registered mapping, checked finite."""
    mapping = LOIHI.get(neuron, name)
    if mapping.kind != "neuron":
        raise LoweringError(f"layer {name} ({type(neuron).__name__}): a neuron layer is needed here, got a "
                            f"{mapping.kind} layer")
    check_finite_module(neuron, name)
    p = mapping.fn(neuron, name)
    if not isinstance(p, CubaParams):
        raise TypeError(f"layer {name} ({type(neuron).__name__}): its Loihi mapping returned "
                        f"{type(p).__name__}, not snn.export.loihi.CubaParams")
    check_finite_values(f"{name} ({type(neuron).__name__})", du=p.du, dv=p.dv, v_threshold=p.vth,
                        decay=p.weight_scale, bias=p.bias)
    return p


def lower(model: nn.Module, in_shape, input_bits: int = 0) -> CubaNet:
    """Lower ``model`` (an ``nn.Sequential`` or a single neuron) for inputs of shape ``in_shape`` (no T, B);
    ``input_bits``: 0 for binary spike input, 1 to :data:`MAX_INPUT_BITS` for graded input in [0, 1].

    Each layer is looked up by its exact class (:mod:`snn.export.registry`). Raises :class:`LoweringError`
    naming a layer that has no mapping and listing :func:`supported_layers`, and ``ValueError`` naming a layer
    with a NaN/Inf weight or parameter.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"lower: model must be an nn.Module (e.g. an nn.Sequential), got {type(model).__name__}")
    in_shape = cur_shape = check_in_shape(in_shape, "lower")
    input_bits = check_int(input_bits, "input_bits", "lower", 0, MAX_INPUT_BITS)
    layers, pending = [], []
    for name, m in iter_sequential(model):
        label = name or type(m).__name__
        mapping = LOIHI.get(m, label)
        check_finite_module(m, label)
        if mapping.kind == AFFINE:
            pending.append((label, m))
            continue
        inputs, neuron, rec, rec_bias = mapping.fn(m, label) if mapping.kind == "recurrent" else ([], m, None, None)
        pending += inputs
        if not pending:
            raise LoweringError(f"{label}: a neuron layer needs a connection (e.g. Linear) before it")
        w, b, out_shape = _affine_map(pending, cur_shape)
        pending = []
        p = _neuron_params(neuron, label)
        if rec_bias is not None:
            b = b + rec_bias
        if p.du != 1.0 and bool((b != 0).any()):
            raise LoweringError(f"{label}: a connection bias before a CUBALIF with du={p.du} != 1 cannot be mapped "
                                f"exactly (it would decay in the current); use bias=False or the neuron's bias")
        if rec is not None and rec.shape != (w.shape[0], w.shape[0]):
            raise LoweringError(f"{label}: recurrent_weight must be [{w.shape[0]}, {w.shape[0]}], "
                                f"got {tuple(rec.shape)}")
        k = p.weight_scale
        layers.append(CubaLayer(name=label, weight=w * k, bias=b * k + p.bias, du=p.du, dv=p.dv, vth=p.vth,
                                rec_weight=None if rec is None else rec * k, out_shape=out_shape, strict=p.strict))
        cur_shape = out_shape
    if pending:
        if not layers:
            raise LoweringError("the model has no neuron layer to lower")
        w, b, out_shape = _affine_map(pending, cur_shape)
        layers.append(CubaLayer(name="readout", weight=w, bias=b, du=1.0, dv=0.0, vth=math.inf, out_shape=out_shape,
                                readout=True))
    if not layers:
        raise LoweringError("the model has no neuron layer to lower")
    return CubaNet(in_shape=in_shape, layers=layers, input_bits=input_bits)


def _register_builtins() -> None:
    """snn's own Loihi mappings of its layers (the neurons' are in their specs): the stateless layers folded
    into the connection, Recurrent; Delay refused."""
    from ...models import ScaledWSConv2d

    affine = (nn.Linear, snn_layers.Linear, nn.Conv1d, snn_layers.Conv1d, nn.Conv2d, snn_layers.Conv2d, ScaledWSConv2d,
              nn.AvgPool2d, snn_layers.AvgPool2d, SumPool2d, nn.Flatten, snn_layers.Flatten, nn.Unflatten,
              nn.BatchNorm1d, snn_layers.BatchNorm1d, nn.BatchNorm2d, snn_layers.BatchNorm2d, *DROPOUT, nn.Identity)
    for cls in affine:
        register_loihi(cls, AFFINE, builtin=True)
    LOIHI.add(RecurrentLayer, Mapping("recurrent", _recurrent_parts), builtin=True)
    refuse_export(Delay, "synaptic delays have no counterpart in this Lava LIF lowering (its Dense connections "
                  "deliver in one step)", "loihi", builtin=True)


_register_builtins()
