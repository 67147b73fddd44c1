"""NIR (Neuromorphic Intermediate Representation) exchange: :func:`to_nir` and :func:`from_nir`.

Time is discrete in snn and continuous in NIR; as in SpikingJelly's and most frameworks' NIR exchange,
one snn step is ``dt`` seconds (default ``1e-4``) and the neuron ODEs are read with forward Euler:

==============================  =====================================================================
snn                             NIR node
==============================  =====================================================================
Linear (bias / no bias)         Affine(weight, bias) / Linear(weight)
Conv1d, Conv2d                  Conv1d, Conv2d (bias zeros when absent)
AvgPool2d, SumPool2d            AvgPool2d, SumPool2d
Flatten(start_dim, end_dim)     Flatten(start_dim - 1, end_dim - 1) (NIR dims exclude the batch)
IF(V_th, V_reset)               IF(r = 1/dt, v_threshold, v_reset)
LIF/PLIF(tau, decay_input)      LIF(tau = tau·dt, r = 1 (decay_input) or tau, v_leak = v_reset, ...)
CUBALIF(du, dv, V_th, bias)     CubaLIF(tau_syn = dt/du, tau_mem = dt/dv, w_in = 1/du, r = 1/dv,
                                v_leak = bias/dv, v_reset = 0)
Recurrent(neuron, W_rec)        the neuron node plus a Linear node ``<name>.rec`` in a cycle with it;
                                the cycle carries S[t-1] (snn's and Lava's one-step delay)
==============================  =====================================================================

(Euler on CubaLIF: ``i += du·(w_in·I - i)`` = ``i(1-du) + I``; ``v += dv·(v_leak - v + r·i)`` =
``v(1-dv) + i + bias``.) Dropout and Identity are dropped. Per-neuron (non-uniform) parameters, soft reset
and ALIF have no snn/NIR counterpart here and are rejected with the layer named.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn

from .. import layers
from ..neuron import ALIF, CUBALIF, IF, LIF, BaseNeuron
from .loihi import LoweringError, Recurrent, SumPool2d, is_dropout, iter_sequential, plain_forward

__all__ = ["to_nir", "from_nir", "DEFAULT_DT", "NIR_SUPPORTED"]

DEFAULT_DT = 1e-4
NIR_SUPPORTED = ("Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Dropout (dropped)",
                 "IF", "LIF", "PLIF", "CUBALIF", "Recurrent")


def _nir():
    try:
        import nir
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError("NIR export needs the `nir` package: pip install 'snn[export]'") from e
    return nir


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32) if isinstance(t, torch.Tensor) else np.asarray(t, np.float32)


# ----------------------------------------------------------------------------------------------------------------
# snn -> NIR
# ----------------------------------------------------------------------------------------------------------------
def _neuron_node(m: BaseNeuron, shape, dt: float, name: str):
    nir = _nir()
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    if isinstance(m, ALIF):
        raise LoweringError(f"{name}: ALIF has no NIR counterpart; supported: {', '.join(NIR_SUPPORTED)}")
    if isinstance(m, CUBALIF):
        if m.du <= 0 or m.dv <= 0:
            raise LoweringError(f"{name}: CUBALIF with du={m.du}, dv={m.dv}: NIR's CubaLIF needs du, dv > 0 "
                                f"(finite time constants)")
        return nir.CubaLIF(tau_syn=full(dt / m.du), tau_mem=full(dt / m.dv), r=full(1 / m.dv),
                           v_leak=full(m.bias / m.dv), v_threshold=full(m.v_threshold), v_reset=full(0.0),
                           w_in=full(1 / m.du))
    if m.v_reset is None:
        raise LoweringError(f"{name}: soft reset (v_reset=None) cannot be expressed in NIR; use v_reset=0.0")
    if isinstance(m, IF):
        return nir.IF(r=full(1 / dt), v_threshold=full(m.v_threshold), v_reset=full(m.v_reset))
    tau = 1.0 / float(torch.as_tensor(m.decay()).detach())
    return nir.LIF(tau=full(tau * dt), r=full(1.0 if m.decay_input else tau), v_leak=full(m.v_reset),
                   v_threshold=full(m.v_threshold), v_reset=full(m.v_reset))


def _conv_node(m, in_shape):
    nir = _nir()
    if m.padding_mode != "zeros":
        raise LoweringError(f"{type(m).__name__}: only zero padding can be expressed in NIR")
    bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    if isinstance(m, nn.Conv1d):
        return nir.Conv1d(input_shape=int(in_shape[-1]), weight=_np(m.weight), stride=m.stride[0],
                          padding=m.padding if isinstance(m.padding, str) else m.padding[0],
                          dilation=m.dilation[0], groups=m.groups, bias=bias)
    return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[-2:]), weight=_np(m.weight), stride=m.stride,
                      padding=m.padding, dilation=m.dilation, groups=m.groups, bias=bias)


def _layer_node(m, in_shape, name):
    nir = _nir()
    if isinstance(m, nn.Linear):
        return nir.Linear(_np(m.weight)) if m.bias is None else nir.Affine(_np(m.weight), _np(m.bias))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return _conv_node(m, in_shape)
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or m.divisor_override is not None or (np.any(m.padding) and not m.count_include_pad):
            raise LoweringError(f"{name}: this AvgPool2d configuration cannot be expressed in NIR")
        return nir.AvgPool2d(kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(m.stride)),
                             padding=np.array(_pair(m.padding)))
    if isinstance(m, SumPool2d):
        return nir.SumPool2d(kernel_size=np.array(m.kernel_size), stride=np.array(m.stride),
                             padding=np.array(m.padding))
    if isinstance(m, nn.Flatten):
        shift = lambda d: d - 1 if d > 0 else d  # noqa: E731
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=shift(m.start_dim),
                           end_dim=shift(m.end_dim))
    raise LoweringError(f"{name}: {type(m).__name__} cannot be expressed in NIR; supported: "
                        f"{', '.join(NIR_SUPPORTED)}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pair2(v) -> tuple[int, int]:
    """A NIR size (scalar or array of 1-2 entries) as an int pair."""
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def to_nir(model: nn.Module, in_shape, dt: float = DEFAULT_DT):
    """An ``nir.NIRGraph`` for a (nested) ``nn.Sequential`` of the layers in the module docstring.

    ``in_shape`` is one sample's shape (no T, B); nodes are named after the modules, plus ``input``/``output``.
    """
    nir = _nir()
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    shape = tuple(in_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, prev = [], "input"
    for name, m in iter_sequential(model):
        name = name or type(m).__name__
        if is_dropout(m) or isinstance(m, nn.Identity):
            continue
        if isinstance(m, Recurrent) or (hasattr(m, "recurrent_weight") and hasattr(m, "neuron")):
            nodes[name] = _neuron_node(m.neuron, shape, dt, name)
            nodes[f"{name}.rec"] = nir.Linear(_np(m.recurrent_weight))
            edges += [(prev, name), (name, f"{name}.rec"), (f"{name}.rec", name)]
        elif isinstance(m, BaseNeuron):
            nodes[name] = _neuron_node(m, shape, dt, name)
            edges.append((prev, name))
        else:
            nodes[name] = _layer_node(m, shape, name)
            edges.append((prev, name))
            with torch.no_grad():
                shape = tuple(plain_forward(m, torch.zeros(1, *shape)).shape[1:])
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "producer": "snn"})


# ----------------------------------------------------------------------------------------------------------------
# NIR -> snn
# ----------------------------------------------------------------------------------------------------------------
def _scalar(v, what: str) -> float:
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.size == 0 or not np.allclose(a, a[0], rtol=1e-6, atol=0):
        raise ValueError(f"{what}: per-neuron values are not supported (snn neurons share one value per layer)")
    return float(a[0])


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-5, atol=1e-12))


def _neuron_module(node, dt: float, name: str, backend: str) -> BaseNeuron:
    nir = _nir()
    kw = dict(step_mode="m", backend=backend)
    if isinstance(node, nir.IF):
        if not _close(_scalar(node.r, f"{name}.r"), 1 / dt):
            raise ValueError(f"{name}: nir.IF.r must be 1/dt = {1 / dt:g} (one snn step is dt)")
        return IF(v_threshold=_scalar(node.v_threshold, f"{name}.v_threshold"),
                  v_reset=_scalar(node.v_reset, f"{name}.v_reset"), **kw)
    if isinstance(node, nir.LIF):
        tau = _scalar(node.tau, f"{name}.tau") / dt
        r, v_reset = _scalar(node.r, f"{name}.r"), _scalar(node.v_reset, f"{name}.v_reset")
        if not _close(_scalar(node.v_leak, f"{name}.v_leak"), v_reset):
            raise ValueError(f"{name}: nir.LIF.v_leak must equal v_reset")
        if not (_close(r, 1.0) or _close(r, tau)):
            raise ValueError(f"{name}: nir.LIF.r must be 1 (decay_input) or tau/dt = {tau:g}, got {r}")
        return LIF(tau=tau, v_threshold=_scalar(node.v_threshold, f"{name}.v_threshold"), v_reset=v_reset,
                   decay_input=_close(r, 1.0) and not _close(tau, 1.0), **kw)
    if isinstance(node, nir.CubaLIF):
        du, dv = dt / _scalar(node.tau_syn, f"{name}.tau_syn"), dt / _scalar(node.tau_mem, f"{name}.tau_mem")
        if not (_close(_scalar(node.w_in, f"{name}.w_in"), 1 / du) and _close(_scalar(node.r, f"{name}.r"), 1 / dv)):
            raise ValueError(f"{name}: nir.CubaLIF needs w_in = tau_syn/dt and r = tau_mem/dt")
        if not _close(_scalar(node.v_reset, f"{name}.v_reset"), 0.0):
            raise ValueError(f"{name}: CUBALIF resets to 0; nir.CubaLIF.v_reset must be 0")
        return CUBALIF(du=du, dv=dv, v_threshold=_scalar(node.v_threshold, f"{name}.v_threshold"),
                       bias=_scalar(node.v_leak, f"{name}.v_leak") * dv, **kw)
    return None


def _layer_module(node, name: str) -> nn.Module:
    nir = _nir()
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = t(node.weight)
        m = layers.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine), step_mode="m")
        with torch.no_grad():
            m.weight.copy_(w)
            if isinstance(node, nir.Affine):
                m.bias.copy_(t(node.bias))
        return m
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = t(node.weight)
        cls = layers.Conv1d if isinstance(node, nir.Conv1d) else layers.Conv2d
        m = cls(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]), stride=node.stride, padding=node.padding,
                dilation=node.dilation, groups=node.groups, bias=True, step_mode="m")
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(t(node.bias))
        return m
    if isinstance(node, nir.AvgPool2d):
        return layers.AvgPool2d(_pair2(node.kernel_size), _pair2(node.stride), _pair2(node.padding), step_mode="m")
    if isinstance(node, nir.SumPool2d):
        return SumPool2d(_pair2(node.kernel_size), _pair2(node.stride), _pair2(node.padding))
    if isinstance(node, nir.Flatten):
        shift = lambda d: d + 1 if d >= 0 else d  # noqa: E731
        return layers.Flatten(start_dim=shift(node.start_dim), end_dim=shift(node.end_dim), step_mode="m")
    raise ValueError(f"{name}: NIR node {type(node).__name__} has no snn counterpart; supported: "
                     f"{', '.join(NIR_SUPPORTED)}")


def _chain(graph):
    """Node names from input to output, and the recurrent Linear node of each self-recurrent neuron."""
    nir = _nir()
    succ = defaultdict(list)
    for a, b in graph.edges:
        succ[a].append(b)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"from_nir: the graph needs exactly one Input node, found {len(inputs)}")
    order, rec, cur = [], {}, inputs[0]
    while True:
        nexts = list(succ[cur])
        for r in list(nexts):
            if succ[r] == [cur] and isinstance(graph.nodes[r], (nir.Linear, nir.Affine)):
                rec[cur] = r
                nexts.remove(r)
        if not nexts:
            break
        if len(nexts) != 1:
            raise ValueError(f"from_nir: node {cur!r} branches to {nexts}; only sequential graphs (and neuron "
                             f"layers recurrent through one Linear) are supported")
        cur = nexts[0]
        if isinstance(graph.nodes[cur], nir.Output):
            break
        if cur in order:
            raise ValueError(f"from_nir: the graph has a cycle through {cur!r} that is not a recurrent layer")
        order.append(cur)
    return order, rec


def from_nir(graph, dt: float | None = None, backend: str = "auto") -> nn.Sequential:
    """An snn ``nn.Sequential`` (step mode 'm': input ``[T, B, ...]``) from an ``nir.NIRGraph`` or a file path.

    ``dt`` defaults to the graph's ``metadata['dt']`` when present, else ``1e-4`` (SpikingJelly's default).
    ``backend`` is given to every neuron.
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(str(graph))
    if dt is None:
        dt = float((getattr(graph, "metadata", None) or {}).get("dt", DEFAULT_DT))
    order, rec = _chain(graph)
    mods = []
    for name in order:
        node = graph.nodes[name]
        neuron = _neuron_module(node, dt, name, backend)
        if neuron is None:
            mods.append(_layer_module(node, name))
        elif name in rec:
            w = torch.as_tensor(np.asarray(graph.nodes[rec[name]].weight), dtype=torch.float32)
            mods.append(Recurrent(neuron, w.shape[0], w))
        else:
            mods.append(neuron)
    return nn.Sequential(*mods)
