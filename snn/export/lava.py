"""Run a lowered network in Lava's CPU simulator (``Loihi2SimCfg``), batch after batch.

:func:`run_lava` takes the float form (:class:`~snn.export.loihi.CubaNet`, run with ``floating_pt``) or
the fixed-point form (:class:`~snn.export.loihi.FixedNet`, run with ``fixed_pt``, i.e. Lava's
bit-accurate ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc``/``PySparseModelBitAcc``) and builds::

    RingBuffer source -> Dense/Sparse -> LIF [-> Sparse (recurrent) -> same LIF] -> Dense/Sparse -> LIF ... -> sink

Every connection is the affine map :func:`snn.export.loihi.lower` folded from the stateless layers (Linear,
convolutions, pooling, Flatten): a ``Dense`` for one sample, a ``Sparse`` (scipy CSR) for a batch. Lava's
``Conv`` process is not used: one connection type keeps Lava and the emulation equal by construction (the
fixed-point ``Dense`` and ``Sparse`` models share their weight clipping, truncation and exponent shift).
The first connection reads graded spikes (``num_message_bits = input_bits``) when the network takes
non-binary input.

Neurons: Lava's LIF fires on ``v > vth``; snn's IF/LIF/PLIF on ``v >= V_th`` unless ``strict_threshold=True``.
The float run gives each LIF :func:`~snn.export.loihi.lowering.lava_threshold` (``nextafter(vth, -inf)`` for a
``>=`` layer: the same spikes in float64), the fixed-point quantizer realises ``>=`` in integers (see
:mod:`snn.export.loihi.quantizer`). A network with a NaN/Inf weight or parameter is refused, naming the layer.

A batch of ``B`` samples is simulated in one run as ``B`` independent copies of the network (block-diagonal
``Sparse`` connections, neuron parameters tiled), so every run starts from Lava's zero state.

Timing: each connection process sends at step ``k`` what it accumulated at step ``k-1`` (Lava's ``a_buff``),
so layer ``l`` (1-based) answers input step ``t`` at Lava step ``t + l``; the network is run for
``T + L`` steps on zero-padded input and the sink is read from column ``L`` on, giving spikes
``[T, B, *out_shape]`` on snn's timeline. A recurrent connection's one-step delay is the ``S[t-1]`` of
:class:`~snn.export.loihi.Recurrent`, so it needs no correction.

Biases: in Lava layer ``l`` already integrates its bias during the ``l`` steps before its first input
arrives, which snn's timeline does not have. So every LIF starts with a zero bias and the run is staged:
after Lava step ``l`` the bias of layer ``l`` is set (``Var.set`` on the paused runtime), then the rest runs
in one go. Only layers with a nonzero bias cost an extra pause.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from .lava_compat import import_lava
from .loihi import CubaNet, FixedNet
from ..checks import check_int
from .loihi.lowering import check_finite_net, check_input, check_lowered, lava_threshold

__all__ = ["run_lava", "build_lava", "save_lowered", "load_lowered"]


def _lava():
    """The Lava classes used here, imported through :mod:`snn.export.lava_compat`."""
    m = {name: import_lava(mod) for name, mod in (
        ("lif", "lava.proc.lif.process"), ("dense", "lava.proc.dense.process"), ("sparse", "lava.proc.sparse.process"),
        ("source", "lava.proc.io.source"), ("sink", "lava.proc.io.sink"), ("cfg", "lava.magma.core.run_configs"),
        ("cond", "lava.magma.core.run_conditions"), ("wu", "lava.utils.weightutils"))}
    return m


def _block(w: np.ndarray, b: int):
    """``b`` copies of ``w`` on the diagonal (a dense array when ``b == 1``)."""
    return w if b == 1 else sp.block_diag([sp.csr_matrix(w)] * b, format="csr")


def _connection(L, w, exp, b, fixed, msg_bits, lv):
    """A Dense (one sample) or Sparse (batch) process with Lava's fixed-point weight settings."""
    w = w.detach().cpu().numpy()
    w = np.rint(w).astype(np.int32) if fixed else w.astype(np.float64)
    kw = dict(num_message_bits=msg_bits)
    if fixed:
        kw.update(weight_exp=int(exp), num_weight_bits=8, sign_mode=lv["wu"].SignMode.MIXED)
    mat = _block(w, b)
    if sp.issparse(mat):
        return lv["sparse"].Sparse(weights=mat, **kw)
    return lv["dense"].Dense(weights=mat, **kw)


def _bias(L, b, fixed):
    """(bias_mant, bias_exp) arrays for ``b`` copies of layer ``L``."""
    if fixed:
        return (np.tile(L.bias_mant.cpu().numpy().astype(np.int32), b),
                np.tile(L.bias_exp.cpu().numpy().astype(np.int32), b))
    return np.tile(L.bias.detach().cpu().numpy().astype(np.float64), b), np.zeros(L.n_out * b)


def _neurons(L, b, fixed, lv):
    """The LIF process of layer ``L``, created with a zero bias (see the staged run in :func:`run_lava`)."""
    mant, exp = _bias(L, b, fixed)
    if fixed:
        vth = L.vth
    else:
        vth = np.finfo(np.float64).max if L.readout else lava_threshold(L)
    return lv["lif"].LIF(shape=(L.n_out * b,), du=L.du, dv=L.dv, vth=vth, bias_mant=np.zeros_like(mant),
                         bias_exp=exp, name=L.name)


def build_lava(net, x_batch: np.ndarray):
    """Build the processes for one batch; ``x_batch [n_in·B, T]``.

    Returns ``(first_process, sink, n_steps, lifs)``; the LIFs have zero biases (set them as :func:`run_lava` does).
    """
    lv = _lava()
    fixed = isinstance(net, FixedNet)
    b = x_batch.shape[0] // math.prod(net.in_shape)
    L_n, T = len(net.layers), x_batch.shape[1]
    data = np.concatenate([x_batch, np.zeros((x_batch.shape[0], L_n), x_batch.dtype)], axis=1)
    src = lv["source"].RingBuffer(data=data)
    port, first, lifs = src.s_out, src, []
    for i, L in enumerate(net.layers):
        msg_bits = net.input_bits if i == 0 else 0
        conn = _connection(L, L.weight, getattr(L, "weight_exp", 0), b, fixed, msg_bits, lv)
        lif = _neurons(L, b, fixed, lv)
        lifs.append(lif)
        port.connect(conn.s_in)
        conn.a_out.connect(lif.a_in)
        if L.rec_weight is not None:
            rec = _connection(L, L.rec_weight, getattr(L, "rec_weight_exp", 0), b, fixed, 0, lv)
            lif.s_out.connect(rec.s_in)
            rec.a_out.connect(lif.a_in)
        port = lif.s_out
    sink = lv["sink"].RingBuffer(shape=(net.layers[-1].n_out * b,), buffer=T + L_n)
    port.connect(sink.a_in)
    return first, sink, T + L_n, lifs


def _run_staged(net, first, lifs, steps, b, cfg, lv):
    """Run ``steps`` steps, switching on layer ``l``'s bias after step ``l`` (1-based)."""
    done = 0
    for l, (L, lif) in enumerate(zip(net.layers, lifs), start=1):
        mant, _ = _bias(L, b, isinstance(net, FixedNet))
        if not mant.any():
            continue
        first.run(condition=lv["cond"].RunSteps(num_steps=l - done), run_cfg=cfg)
        done = l
        lif.bias_mant.set(mant)
    first.run(condition=lv["cond"].RunSteps(num_steps=steps - done), run_cfg=cfg)


def _encode_input(net, x: torch.Tensor, fixed: bool) -> np.ndarray:
    """``x [T, B, ...]`` -> ``[n_in·B, T]`` as the source sends it (integers in fixed point)."""
    T, B = x.shape[:2]
    x = x.detach().cpu().double().reshape(T, B, -1)
    if net.input_bits:
        x = x.clamp(0, 1)
        if fixed:
            x = torch.round(x * (2 ** net.input_bits - 1))
    elif not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("run_lava: the network takes binary spikes (input_bits=0) but the input has values "
                         "other than 0/1")
    arr = x.permute(1, 2, 0).reshape(-1, T).numpy()
    return arr.astype(np.int32) if fixed else arr


def run_lava(net: CubaNet | FixedNet, x_seq: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Simulate ``net`` on ``x_seq [T, B, *in_shape]`` in Lava, ``batch_size`` samples per run.

    ``FixedNet`` runs under ``Loihi2SimCfg(select_tag='fixed_pt')``, ``CubaNet`` under ``'floating_pt'``.
    Returns output spikes ``[T, B, *out_shape]`` (float32 0/1) aligned with snn's timeline; for a network
    with a readout layer, the readout's final potential ``[B, *out_shape]`` (float units; fixed point divided
    by the layer's scale), read from the LIF's ``v`` after the run.
    """
    check_lowered(net, (CubaNet, FixedNet), "run_lava", "from snn.export.lower or snn.export.quantize")
    check_input(net, x_seq, "run_lava")
    batch_size = check_int(batch_size, "batch_size", "run_lava", 1)
    check_finite_net(net)
    lv = _lava()
    fixed = isinstance(net, FixedNet)
    T, B = x_seq.shape[:2]
    cfg = lv["cfg"].Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt")
    n_out, outs = net.layers[-1].n_out, []
    for start in range(0, B, batch_size):
        xb = x_seq[:, start:start + batch_size]
        b = xb.shape[1]
        first, sink, steps, lifs = build_lava(net, _encode_input(net, xb, fixed))
        try:
            _run_staged(net, first, lifs, steps, b, cfg, lv)
            data = np.asarray(sink.data.get())
            v_out = np.asarray(lifs[-1].v.get(), dtype=np.float64)
        finally:
            first.stop()
        if net.readout:
            scale = net.layers[-1].scale if fixed else 1.0
            outs.append(torch.from_numpy(v_out / scale).reshape(b, *net.out_shape))
            continue
        spikes = data[:, len(net.layers):len(net.layers) + T].reshape(b, n_out, T)
        outs.append(torch.from_numpy(spikes.transpose(2, 0, 1).astype(np.float32)))
    if net.readout:
        return torch.cat(outs, 0)
    return torch.cat(outs, 1).reshape(T, B, *net.out_shape)


EXPORT_FORMAT = "snn-lava-export-1"


def save_lowered(net: CubaNet | FixedNet, path) -> None:
    """Write a lowered network (float or fixed-point Lava parameters) atomically, for :func:`load_lowered`.
    A network with a NaN/Inf weight or parameter is refused (``ValueError`` naming the layer), writing nothing."""
    from dataclasses import asdict

    from ..io import atomic_torch_save

    check_lowered(net, (CubaNet, FixedNet), "save_lowered", "from snn.export.lower or snn.export.quantize")
    check_finite_net(net)
    kind = "fixed" if isinstance(net, FixedNet) else "float"
    d = asdict(net)
    atomic_torch_save({"format": EXPORT_FORMAT, "kind": kind, "net": d}, path)


def load_lowered(path) -> CubaNet | FixedNet:
    """Read a file written by :func:`save_lowered` (``snn export --to lava``) without running code from it;
    a clear error naming the file when it is missing, damaged, or not such an export."""
    from ..io import safe_torch_load
    from .loihi import CubaLayer, FixedLayer

    d = safe_torch_load(path, "Lava export")
    if not isinstance(d, dict) or d.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path} is not an snn Lava export ({EXPORT_FORMAT!r})")
    if d.get("kind") not in ("fixed", "float") or not isinstance(d.get("net"), dict):
        raise ValueError(f"Lava export {path}: 'kind' must be 'fixed' or 'float' and 'net' a dict")
    layer_cls, net_cls = (FixedLayer, FixedNet) if d["kind"] == "fixed" else (CubaLayer, CubaNet)
    try:
        net = dict(d["net"])
        net["layers"] = [layer_cls(**L) for L in net["layers"]]
        net["in_shape"] = tuple(net["in_shape"])
        for L in net["layers"]:
            L.out_shape = tuple(L.out_shape)
        return net_cls(**net)
    except (KeyError, TypeError) as e:
        raise ValueError(f"Lava export {path}: its {d['kind']} network does not rebuild "
                         f"({type(e).__name__}: {e})") from None
