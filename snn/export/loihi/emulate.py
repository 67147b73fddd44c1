r"""Bit-accurate and float emulations of Lava's LIF/Dense: :func:`emulate_fixed`, :func:`emulate_float`, and
the integer primitives (:func:`trunc_div`, :func:`floor_shift`, :func:`wrap24`).

:func:`emulate_fixed` runs a :class:`~snn.export.loihi.FixedNet` with exactly Lava's integer arithmetic::

    a    = (Σ_j w_ij s_j) << e          (>> -e, i.e. floor, for e <= 0)
    u    = trunc(u·(4096 - du - 1) / 4096) + (a << 6),  then wrapped into 24 bits
    v    = clip(trunc(v·(4096 - dv) / 4096) + u + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)
    s    = v > (vth << 6);  v = 0 where s

batched, on any device, with every rounding written as a straight-through estimator so that
:class:`~snn.export.loihi.QATNet` can fine-tune the float weights through the deployed arithmetic. When the
current wraps around or the potential is clipped (values the float network does not have), it warns, naming
the layer.
:func:`emulate_float` runs a :class:`~snn.export.loihi.CubaNet` with Lava's floating-point model (the
equations in :mod:`snn.export.loihi.lowering`).
"""
from __future__ import annotations

import warnings

import torch

from ... import surrogate as sg
from .constants import ACT_SHIFT, DECAY_UNITY, MAX_UV, VTH_SHIFT
from .lowering import CubaNet, check_finite_net, check_input, check_lowered, lava_threshold
from .quantizer import FixedLayer, FixedNet


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
    """Neuron loop of one fixed-point layer; ``a_ff [T, B, N]`` is the shifted synaptic input (before << 6).

    Returns spikes, the last potential, the recorded potentials (or None) and how many times the current wrapped
    around 24 bits and the potential was clipped (Lava's arithmetic: values the float network does not have)."""
    T = a_ff.shape[0]
    u = torch.zeros_like(a_ff[0])
    v = torch.zeros_like(a_ff[0])
    s = torch.zeros_like(a_ff[0])
    wraps = clips = torch.zeros((), dtype=torch.int64, device=a_ff.device)
    vth_eff = float(L.vth << VTH_SHIFT)
    out, vs = [], []
    for t in range(T):
        a = a_ff[t]
        if w_rec is not None:
            a = a + floor_shift(_exact_matmul(s, w_rec, 1.0), L.rec_weight_exp)
        u_raw = trunc_div(u * (DECAY_UNITY - L.du - 1), DECAY_UNITY) + a * 2.0 ** ACT_SHIFT
        u = wrap24(u_raw)
        v_raw = trunc_div(v * (DECAY_UNITY - L.dv), DECAY_UNITY) + u + bias
        v = v_raw.clamp(-MAX_UV + 1, MAX_UV - 1)
        wraps = wraps + (u.detach() != u_raw.detach()).sum()
        clips = clips + (v.detach() != v_raw.detach()).sum()
        if not L.readout:
            s = _spike(v, vth_eff, surrogate)
            v = v * (1 - s)
        out.append(s)
        if record:
            vs.append(v.detach())
    return torch.stack(out), v, (torch.stack(vs) if record else None), (int(wraps), int(clips))


def _warn_overflow(L: FixedLayer, wraps: int, clips: int) -> None:
    """Say when Lava's 24-bit arithmetic changed values (as it does on the chip): those spikes are not the float
    network's."""
    if wraps or clips:
        warnings.warn(f"emulate_fixed: layer {L.name}: the current u wrapped around 24 bits {wraps} time(s) and the "
                      f"potential v was clipped to ±(2^23 - 1) {clips} time(s), as Lava does; spikes there differ "
                      f"from the float network (smaller weights, fewer coincident input spikes or fewer steps of a "
                      f"readout avoid it)", RuntimeWarning, stacklevel=3)


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
    check_lowered(net, (FixedNet,), "emulate_fixed", "from snn.export.quantize; emulate_float runs a CubaNet")
    check_input(net, x_seq, "emulate_fixed")
    surrogate = sg.get(surrogate)
    check_finite_net(net)
    T, B = x_seq.shape[:2]
    s = _input_ints(x_seq, net.input_bits).reshape(T, B, -1)
    x_max = float(2 ** net.input_bits - 1) if net.input_bits else 1.0
    outs, vs = [], []
    for i, L in enumerate(net.layers):
        w, w_rec = weights[i] if weights is not None else (L.weight, L.rec_weight)
        w = w.to(s.device)
        a = floor_shift(_exact_matmul(s.reshape(T * B, -1), w, x_max), L.weight_exp).reshape(T, B, -1)
        s, v_last, v, overflow = _run_fixed_layer(a, L, None if w_rec is None else w_rec.to(s.device),
                                                  _fixed_layer_params(L, s.device), surrogate, record_v)
        _warn_overflow(L, *overflow)
        x_max = 1.0
        outs.append((v_last / L.scale).reshape(B, *L.out_shape) if L.readout else s.reshape(T, B, *L.out_shape))
        vs.append(v)
    res = outs if all_layers else outs[-1]
    return (res, vs) if record_v else res


def emulate_float(net: CubaNet, x_seq: torch.Tensor, *, all_layers: bool = False, surrogate=None):
    """Lava's ``floating_pt`` LIF/Dense arithmetic in float64 on snn's timeline (see the module docstring),
    with the threshold of :func:`~snn.export.loihi.lowering.lava_threshold` (each layer's own comparison).

    Returns spikes ``[T, B, *out_shape]``, or for a readout network the final readout potential ``[B, *out_shape]``.
    """
    check_lowered(net, (CubaNet,), "emulate_float", "from snn.export.lower; emulate_fixed runs a FixedNet")
    check_input(net, x_seq, "emulate_float")
    surrogate = sg.get(surrogate)
    check_finite_net(net)
    T, B = x_seq.shape[:2]
    s = x_seq.double().reshape(T, B, -1)
    outs = []
    for L in net.layers:
        vth = lava_threshold(L)
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
                sp = _spike(v, vth, surrogate)
                v = v * (1 - sp)
            out.append(sp)
        s = torch.stack(out)
        outs.append(v.reshape(B, *L.out_shape) if L.readout else s.reshape(T, B, *L.out_shape))
    return outs if all_layers else outs[-1]
