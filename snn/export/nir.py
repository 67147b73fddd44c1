"""NIR (Neuromorphic Intermediate Representation) exchange: :func:`to_nir`, :func:`write_nir`, :func:`read_nir`,
:func:`from_nir`.

Time is discrete in snn and continuous in NIR; as in SpikingJelly's and most frameworks' NIR exchange,
one snn step is ``dt`` seconds (default ``1e-4``) and the neuron ODEs are read with forward Euler, the input
current of step ``t`` entering step ``t`` (CubaLIF: the current first, then the voltage with the new current)::

    IF       v[t] = v[t-1] + dt·r·I[t]
    LIF      v[t] = v[t-1] + dt/tau·(v_leak - v[t-1] + r·I[t])
    CubaLIF  i[t] = i[t-1] + dt/tau_syn·(w_in·I[t] - i[t-1]);  v[t] = v[t-1] + dt/tau_mem·(v_leak - v[t-1] + r·i[t])
    spike    z[t] = v[t] > v_threshold;  v[t] = v_reset where z[t];   start: v = v_reset, i = 0

==============================  =====================================================================
snn                             NIR node
==============================  =====================================================================
Linear (bias / no bias)         Affine(weight, bias) / Linear(weight)
Conv1d, Conv2d                  Conv1d, Conv2d (bias zeros when absent)
ScaledWSConv2d                  Conv2d with the standardised weight it computes with
AvgPool2d, SumPool2d            AvgPool2d, SumPool2d
Flatten(start_dim, end_dim)     Flatten(start_dim - 1, end_dim - 1) (NIR dims exclude the batch)
IF(V_th, V_reset)               IF(r = 1/dt, v_threshold, v_reset)
LIF/PLIF(tau, decay_input)      LIF(tau = tau·dt, r = 1 (decay_input) or tau, v_leak = v_reset, ...)
CUBALIF(du, dv, V_th, bias)     CubaLIF(tau_syn = dt/du, tau_mem = dt/dv, w_in = 1/du, r = 1/dv,
                                v_leak = bias/dv, v_reset = 0)
Recurrent(in, out, neuron)      a subgraph ``<name>`` (as snnTorch writes RLeaky/RSynaptic): ``input ->
                                w_in (Affine W_in, b) -> neuron <-> w_rec (Linear W_rec) -> output``
Recurrent(None, n, neuron)      the neuron node plus a Linear (Affine with ``b``) node ``<name>.rec`` in a
                                cycle with it
Delay(d)                        Delay(delay = d·dt, one value per element of the sample)
==============================  =====================================================================

A cycle carries S[t-1] (snn's and Lava's one-step delay): the recurrent input at step t is ``W_rec·S[t-1]``
(``S[-1] = 0``). Reading a graph, a subgraph of that form becomes a :class:`snn.recurrent.Recurrent` with its input
connection, any other subgraph is flattened into its nodes; a NIR ``Delay`` of whole multiples of ``dt`` becomes
a :class:`snn.recurrent.Delay`.

(Euler on CubaLIF: ``i += du·(w_in·I - i)`` = ``i(1-du) + I``; ``v += dv·(v_leak - v + r·i)`` =
``v(1-dv) + i + bias``.) Dropout and Identity are dropped. Per-neuron (non-uniform) parameters, soft reset
and ALIF have no snn/NIR counterpart here and are rejected with the layer named.

Both directions dispatch on the exact class through :mod:`snn.export.registry` (snn -> NIR on the module's class,
NIR -> snn on the node's): a subclass of LIF is refused, naming the layer, until a mapping is registered for it
with :func:`snn.export.register_nir`. The neurons' mappings are declared in their specs (``exports``, functions in
:mod:`snn.export.neurons`); :func:`supported_layers` and :func:`importable_nodes` list what maps.

Threshold comparison: NIR fires on ``v > v_threshold``. Every imported neuron gets ``strict_threshold=True``.
An exported neuron that fires on ``V >= V_th`` (snn's IF/LIF/PLIF default) is written with the threshold
``nextafter(float32(V_th), -inf)`` (:func:`nir_threshold`): snn compares float32 potentials with
``float32(V_th)``, and no float32 lies strictly between the two values, so ``v > threshold ⟺ v >= V_th`` for
every float32 ``v``.

Exact round trip: weights, thresholds and resets are written as the float32 values snn computes with; time
constants, ``r``, ``w_in`` and CubaLIF's ``v_leak`` as float64, picked among the float64 values within a few ulps
of ``tau·dt`` (``bias/dv``) as the one from which :func:`from_nir` recomputes snn's float32 decay (bias) bit for
bit, so snn -> NIR -> snn gives the same spikes.

Refused with a clear error: non-finite weights or parameters (naming the layer or node), ``dt`` that is not a
finite number > 0, files that are missing, not HDF5 or not NIR (naming the file), graphs that are not a chain
of the supported nodes (naming the node).
"""
from __future__ import annotations

import copy
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .. import layers
from ..models import ScaledWSConv2d
from ..recurrent import Delay, Recurrent
from .loihi import LoweringError, SumPool2d, iter_sequential, plain_forward
from .loihi.lowering import DROPOUT, check_finite_module, check_in_shape
from .registry import NIR, Mapping, NIRContext, NIRImportContext, find_import, importable, register_nir

__all__ = ["to_nir", "from_nir", "read_nir", "write_nir", "nir_threshold", "DEFAULT_DT", "supported_layers",
           "importable_nodes"]

DEFAULT_DT = 1e-4


def _nir():
    try:
        import nir
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError("NIR export needs the `nir` package: pip install 'snn[export]'") from e
    return nir


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32) if isinstance(t, torch.Tensor) else np.asarray(t, np.float32)


def check_dt(dt, who: str) -> float:
    """``dt``, the seconds per snn step, as a finite float > 0."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: dt must be a number of seconds per step (> 0), got {type(dt).__name__} "
                        f"{dt!r}") from None
    if isinstance(dt, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{who}: dt must be a finite number of seconds per step > 0, got {dt!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# snn -> NIR
# ----------------------------------------------------------------------------------------------------------------
def nir_threshold(v_threshold: float, strict: bool) -> np.float32:
    """NIR's ``v_threshold`` (NIR fires on ``v > θ``) for an snn neuron with threshold ``V_th``.

    snn compares float32 potentials (the state of float32 and half-precision runs) with ``float32(V_th)``.
    Strict neurons: ``θ = float32(V_th)``. Neurons that fire on ``v >= V_th``: ``θ = nextafter(float32(V_th),
    -inf)``; no float32 lies strictly between θ and ``float32(V_th)``, so ``v > θ ⟺ v >= V_th`` for every float32
    ``v`` (a network run in float64 keeps float64 potentials, for which this holds only up to float32 rounding)."""
    th = np.float32(v_threshold)
    return th if strict else np.nextafter(th, np.float32(-np.inf))


def supported_layers() -> list[str]:
    """The layer classes :func:`to_nir` writes (by exact class; see :mod:`snn.export.registry`)."""
    return NIR.supported()


def importable_nodes() -> list[str]:
    """The NIR node types :func:`from_nir` reads (besides Input, Output and nested NIRGraphs)."""
    return importable()


def _linear_node(m: nn.Linear, ctx: NIRContext):
    nir = _nir()
    return nir.Linear(_np(m.weight)) if m.bias is None else nir.Affine(_np(m.weight), _np(m.bias))


def _conv_node(m, ctx: NIRContext, weight=None):
    """Conv1d/Conv2d with ``weight`` (default ``m.weight``); zero padding only, bias zeros when absent."""
    nir = _nir()
    if m.padding_mode != "zeros":
        raise LoweringError(f"layer {ctx.name} ({type(m).__name__}): only zero padding can be expressed in NIR")
    weight = _np(m.weight if weight is None else weight)
    bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    if isinstance(m, nn.Conv1d):
        return nir.Conv1d(input_shape=int(ctx.shape[-1]), weight=weight, stride=m.stride[0],
                          padding=m.padding if isinstance(m.padding, str) else m.padding[0],
                          dilation=m.dilation[0], groups=m.groups, bias=bias)
    return nir.Conv2d(input_shape=tuple(int(s) for s in ctx.shape[-2:]), weight=weight, stride=m.stride,
                      padding=m.padding, dilation=m.dilation, groups=m.groups, bias=bias)


def _ws_conv_node(m: ScaledWSConv2d, ctx: NIRContext):
    """Scaled weight standardisation: a Conv2d with the standardised weight the layer computes with."""
    with torch.no_grad():
        return _conv_node(m, ctx, m.standardized_weight())


def _avgpool_node(m: nn.AvgPool2d, ctx: NIRContext):
    if m.ceil_mode or m.divisor_override is not None or (np.any(m.padding) and not m.count_include_pad):
        raise LoweringError(f"layer {ctx.name} ({type(m).__name__}): this AvgPool2d configuration cannot be "
                            f"expressed in NIR")
    return _nir().AvgPool2d(kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(m.stride)),
                            padding=np.array(_pair(m.padding)))


def _sumpool_node(m: SumPool2d, ctx: NIRContext):
    return _nir().SumPool2d(kernel_size=np.array(m.kernel_size), stride=np.array(m.stride),
                            padding=np.array(m.padding))


def _flatten_node(m: nn.Flatten, ctx: NIRContext):
    """NIR's dims exclude the batch: ``start_dim - 1`` / ``end_dim - 1`` (negative dims unchanged)."""
    shift = lambda d: d - 1 if d > 0 else d  # noqa: E731
    return _nir().Flatten(input_type={"input": np.array(ctx.shape)}, start_dim=shift(m.start_dim),
                          end_dim=shift(m.end_dim))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pair2(v) -> tuple[int, int]:
    """A NIR size (scalar or array of 1-2 entries) as an int pair."""
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def _neuron_node(m, ctx: NIRContext):
    """The NIR node of a neuron layer through its registered mapping (``kind='neuron'``)."""
    mapping = NIR.get(m, ctx.name)
    if mapping.kind != "neuron":
        raise LoweringError(f"layer {ctx.name} ({type(m).__name__}): a neuron layer is needed here, got a "
                            f"{mapping.kind} layer")
    return mapping.fn(m, ctx)


def _affine(w, b):
    nir = _nir()
    return nir.Linear(_np(w)) if b is None else nir.Affine(_np(w), _np(b))


def _recurrent_nodes(m: Recurrent, ctx: NIRContext):
    """A :class:`Recurrent` layer. Without an input connection: the neuron node and the ``<name>.rec``
    Linear/Affine node (``W_rec``, ``b``), written in a cycle. With one: a subgraph (as snnTorch writes its
    RLeaky/RSynaptic) ``input -> w_in (Affine W_in, b) -> neuron <-> w_rec (Linear W_rec) -> output``."""
    nir = _nir()
    if m.weight is None:
        return _neuron_node(m.neuron, ctx), _affine(m.recurrent_weight, m.bias)
    if len(ctx.shape) != 1:
        raise LoweringError(f"layer {ctx.name} (Recurrent): input of shape {ctx.shape}; a recurrent layer takes "
                            f"flat samples [in_features] (put a Flatten before it)")
    out = (m.out_features,)
    neuron = _neuron_node(m.neuron, NIRContext(f"{ctx.name}.neuron", out, ctx.dt))
    nodes = {"input": nir.Input(input_type={"input": np.array(ctx.shape)}), "w_in": _affine(m.weight, m.bias),
             "neuron": neuron, "w_rec": nir.Linear(_np(m.recurrent_weight)),
             "output": nir.Output(output_type={"output": np.array(out)})}
    edges = [("input", "w_in"), ("w_in", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _delay_node(m: Delay, ctx: NIRContext):
    """NIR's ``Delay``: ``y(t) = x(t - τ)`` with ``τ = d·dt`` seconds, one value per element of the sample."""
    d = m.delays.detach().cpu().numpy().astype(np.float64)
    return _nir().Delay(delay=np.broadcast_to(d * ctx.dt, ctx.shape).copy())


def to_nir(model: nn.Module, in_shape, dt: float = DEFAULT_DT):
    """An ``nir.NIRGraph`` for a (nested) ``nn.Sequential`` of the layers in the module docstring.

    ``in_shape`` is one sample's shape (no T, B); nodes are named after the modules, plus ``input``/``output``.
    Each layer is looked up by its exact class (:mod:`snn.export.registry`). Raises ``LoweringError`` naming a
    layer NIR cannot express or that has no mapping, ``ValueError`` naming a layer with a NaN/Inf weight or
    parameter, or for a bad ``dt``/``in_shape``.
    """
    nir = _nir()
    dt = check_dt(dt, "to_nir")
    shape = check_in_shape(in_shape, "to_nir")
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, prev = [], "input"
    for name, m in iter_sequential(model):
        name = name or type(m).__name__
        mapping = NIR.get(m, name)
        if mapping.kind == "dropped":
            continue
        check_finite_module(m, name)
        ctx = NIRContext(name, shape, dt)
        written = mapping.fn(m, ctx)
        if mapping.kind == "recurrent" and not isinstance(written, nir.NIRGraph):
            nodes[name], nodes[f"{name}.rec"] = written
            edges += [(prev, name), (name, f"{name}.rec"), (f"{name}.rec", name)]
        else:
            nodes[name] = written
            edges.append((prev, name))
        if mapping.kind == "layer":
            with torch.no_grad():
                shape = tuple(plain_forward(m, torch.zeros(1, *shape)).shape[1:])
        elif isinstance(written, nir.NIRGraph):
            shape = tuple(int(v) for v in next(iter(written.output_type.values())))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "producer": "snn"})
    _check_nodes_finite(graph.nodes, "to_nir")
    return graph


def _node_arrays(node):
    """(field name, float array) of every numeric parameter of a NIR node."""
    for key, value in vars(node).items():
        if key in ("input_type", "output_type", "metadata") or isinstance(value, (str, dict)):
            continue
        try:
            a = np.asarray(value)
        except (ValueError, TypeError):     # a ragged or odd field is not a numeric parameter
            continue
        if a.dtype.kind in "fiub":
            yield key, a.astype(np.float64)


def _check_nodes_finite(nodes: dict, where: str | None = None) -> None:
    """Refuse a NaN/Inf in any node's parameters, naming the node and the parameter (after ``where: ``)."""
    for name, node in nodes.items():
        if isinstance(node, _nir().NIRGraph):
            _check_nodes_finite({f"{name}.{k}": n for k, n in node.nodes.items()}, where)
            continue
        for key, a in _node_arrays(node):
            if not np.isfinite(a).all():
                raise ValueError(f"{where + ': ' if where else ''}node {name!r} ({type(node).__name__}): {key} has "
                                 f"{int((~np.isfinite(a)).sum())} non-finite value(s) (NaN/Inf)")


def write_nir(graph, path) -> None:
    """Write ``graph`` (an ``nir.NIRGraph``) to ``path`` atomically (a temporary file, then rename).

    A graph with a NaN/Inf parameter is refused (``ValueError`` naming the node) and nothing is written."""
    nir = _nir()
    from ..io import atomic_path

    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"write_nir: graph must be an nir.NIRGraph (e.g. from to_nir), got {type(graph).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"write_nir: {path} is a directory; give the path of the NIR file to write")
    _check_nodes_finite(graph.nodes, f"write_nir({path})")
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)


# ----------------------------------------------------------------------------------------------------------------
# Reading a file
# ----------------------------------------------------------------------------------------------------------------
def read_nir(path):
    """The ``nir.NIRGraph`` in the NIR (HDF5) file ``path``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and what is wrong for
    anything else (a directory, not HDF5, truncated, HDF5 but not NIR, a node nir cannot build)."""
    nir = _nir()
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NIR file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"NIR file {path} is not a regular file")
    if not h5py.is_hdf5(str(path)):
        raise ValueError(f"NIR file {path} is not an HDF5 file (NIR files are HDF5, written by nir.write); "
                         f"it may be damaged or in another format")
    try:
        graph = nir.read(str(path), type_check=False)
    except Exception as e:  # noqa: BLE001 - h5py and nir raise anything on damaged or foreign files
        raise ValueError(f"NIR file {path} cannot be read as NIR ({type(e).__name__}: {e}); it may be damaged, "
                         f"truncated or an HDF5 file of another kind") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"NIR file {path} holds a single {type(graph).__name__} node, not a graph")
    return graph


# ----------------------------------------------------------------------------------------------------------------
# The graph's structure
# ----------------------------------------------------------------------------------------------------------------
def _flatten(nodes: dict, edges: list) -> tuple[dict, list]:
    """Nodes and edges with every nested ``NIRGraph`` node replaced by its own nodes (named ``<sub>.<inner>``),
    wired through the subgraph's Input and Output nodes."""
    nir = _nir()
    flat, inner_edges, entry, exits = {}, [], {}, {}
    for name, node in nodes.items():
        if not isinstance(node, nir.NIRGraph) or _recurrent_roles(node):
            flat[name] = node
            continue
        sub_nodes, sub_edges = _flatten(dict(node.nodes), _edge_list(node.edges, name))
        ins = [k for k, n in sub_nodes.items() if isinstance(n, nir.Input)]
        outs = [k for k, n in sub_nodes.items() if isinstance(n, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError(f"subgraph {name!r} needs one Input and one Output node, found "
                             f"{len(ins)} and {len(outs)}")
        for k, n in sub_nodes.items():
            new = f"{name}.{k}"
            if k in (ins[0], outs[0]):
                continue
            if new in nodes or new in flat:
                raise ValueError(f"subgraph {name!r} holds a node {k!r} whose flattened name {new!r} is already "
                                 f"a node of the graph")
            flat[new] = n
        entry[name] = [f"{name}.{b}" for a, b in sub_edges if a == ins[0] and b != outs[0]]
        exits[name] = [f"{name}.{a}" for a, b in sub_edges if b == outs[0] and a != ins[0]]
        inner_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges if a != ins[0] and b != outs[0]]
    out = [(a2, b2) for a, b in edges for a2 in exits.get(a, [a]) for b2 in entry.get(b, [b])]
    return flat, out + inner_edges


def _edge_list(edges, where: str) -> list:
    """The edges as (str, str) pairs, duplicates dropped."""
    out = []
    try:
        for a, b in edges:
            e = (str(a), str(b))
            if e not in out:
                out.append(e)
    except (TypeError, ValueError):
        raise ValueError(f"the edges of {where} must be (source, target) pairs, got {edges!r}") from None
    return out


def _import_mapping(node) -> Mapping | None:
    """How :func:`from_nir` builds ``node``, looked up by its exact NIR class (a subgraph: a recurrent layer as
    :func:`to_nir` writes it); None if it has no counterpart."""
    cls = type(node)
    if getattr(_nir(), cls.__name__, None) is not cls:
        return None
    if cls is _nir().NIRGraph:
        return Mapping("recurrent", _subgraph_module) if _recurrent_roles(node) else None
    return find_import(cls.__name__)


def _is_neuron(node) -> bool:
    mapping = _import_mapping(node)
    return mapping is not None and mapping.kind == "neuron"


def _recurrent_links(nodes, succ, pred) -> dict:
    """Neuron name -> the Linear/Affine node that forms a two-node cycle with it (a recurrent layer)."""
    nir = _nir()
    rec = {}
    for name, node in nodes.items():
        if not isinstance(node, (nir.Linear, nir.Affine)) or len(succ[name]) != 1 or succ[name] != pred[name]:
            continue
        neuron = succ[name][0]
        if _is_neuron(nodes[neuron]):
            if neuron in rec:
                raise ValueError(f"neuron node {neuron!r} has two recurrent connections "
                                 f"({rec[neuron]!r}, {name!r}); snn's recurrent layer has one")
            rec[neuron] = name
    return rec


def _chain(nodes: dict, edges: list):
    """Node names from input to output, and the recurrent Linear/Affine node of each recurrent neuron."""
    nir = _nir()
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"edge ({a!r}, {b!r}) names a node {end!r} that the graph does not have")
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the graph needs exactly one Input and one Output node, found "
                         f"{len(inputs)} Input and {len(outputs)} Output")
    rec = _recurrent_links(nodes, succ, pred)
    order, cur = [], inputs[0]
    while True:
        nexts = [n for n in succ[cur] if n != rec.get(cur)]
        if len(nexts) != 1:
            what = "does not lead to the output" if not nexts else f"branches to {nexts}"
            raise ValueError(f"node {cur!r} {what}; only chains of nodes (with neuron layers recurrent "
                             f"through one Linear/Affine) are supported")
        prev, cur = cur, nexts[0]
        others = [p for p in pred[cur] if p not in (prev, rec.get(cur))]
        if others:
            raise ValueError(f"node {cur!r} also receives input from {others}; only chains of nodes "
                             f"(with neuron layers recurrent through one Linear/Affine) are supported")
        if cur == outputs[0]:
            break
        if cur in order or cur == inputs[0]:
            raise ValueError(f"the graph has a cycle through {cur!r} that is not a recurrent layer")
        order.append(cur)
    unused = sorted(set(nodes) - {inputs[0], outputs[0]} - set(order) - set(rec.values()))
    if unused:
        raise ValueError(f"node(s) {unused} are not on the chain from input to output")
    return inputs[0], order, rec


# ----------------------------------------------------------------------------------------------------------------
# NIR -> snn
# ----------------------------------------------------------------------------------------------------------------
def _scalar(v, what: str, n: int | None = None) -> float:
    """One value for the whole layer from a NIR parameter array (scalar, or one equal value per neuron)."""
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what} is empty")
    if n is not None and a.size not in (1, n):
        raise ValueError(f"{what} has {a.size} values for a layer of {n} neurons")
    if not np.all(a == a[0]):
        raise ValueError(f"{what}: per-neuron values are not supported (snn neurons share one value per layer; "
                         f"found values from {a.min():g} to {a.max():g})")
    return float(a[0])


def _import_context(node, name: str, dt: float, n: int, backend: str) -> NIRImportContext:
    scalar = lambda field: _scalar(getattr(node, field), field, n)  # noqa: E731
    return NIRImportContext(name=name, dt=dt, n=n, backend=backend, scalar=scalar)


def _module(node, mapping: Mapping, ctx: NIRImportContext) -> nn.Module:
    """The snn module ``mapping`` builds for ``node`` (neurons get ``strict_threshold=True``: NIR fires on
    ``v > v_threshold``); an error names the node."""
    try:
        return mapping.fn(node, ctx)
    except (ValueError, TypeError) as e:
        if f"node {ctx.name!r}" in str(e):
            raise ValueError(str(e)) from None
        raise ValueError(f"node {ctx.name!r} ({type(node).__name__}, dt={ctx.dt:g}): {e}") from None


def _weight(node, name: str, ndim: int) -> torch.Tensor:
    w = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
    if w.dim() != ndim or 0 in w.shape:
        raise ValueError(f"node {name!r} ({type(node).__name__}): weight must be a non-empty "
                         f"{ndim}-D array, got shape {tuple(w.shape)}")
    return w


def _bias(node, name: str, n: int) -> torch.Tensor:
    b = torch.as_tensor(np.asarray(node.bias, dtype=np.float32))
    if b.dim() == 0:
        b = b.expand(n)
    if b.shape != (n,):
        raise ValueError(f"node {name!r} ({type(node).__name__}): bias must have {n} entries, got shape "
                         f"{tuple(b.shape)}")
    return b


def _ints(v, name: str, what: str):
    a = np.atleast_1d(np.asarray(v))
    if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
        raise ValueError(f"node {name!r}: {what} must be integers, got {v!r}")
    return tuple(int(x) for x in a)


def _affine_module(node, ctx: NIRImportContext) -> layers.Linear:
    nir = _nir()
    name = ctx.name
    w = _weight(node, name, 2)
    has_bias = isinstance(node, nir.Affine)
    m = layers.Linear(w.shape[1], w.shape[0], bias=has_bias, step_mode="m")
    with torch.no_grad():
        m.weight.copy_(w)
        if has_bias:
            m.bias.copy_(_bias(node, name, w.shape[0]))
    return m


def _conv_module(node, ctx: NIRImportContext) -> nn.Module:
    nir = _nir()
    name = ctx.name
    one_d = isinstance(node, nir.Conv1d)
    w = _weight(node, name, 3 if one_d else 4)
    cls = layers.Conv1d if one_d else layers.Conv2d
    padding = node.padding if isinstance(node.padding, str) else _ints(node.padding, name, "padding")
    groups = _ints(node.groups, name, "groups")[0]
    m = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride, name, "stride"),
            padding=padding if isinstance(padding, str) or len(padding) > 1 else padding[0],
            dilation=_ints(node.dilation, name, "dilation"), groups=groups, bias=True, step_mode="m")
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(_bias(node, name, w.shape[0]))
    return m


def _avgpool_module(node, ctx: NIRImportContext) -> layers.AvgPool2d:
    return layers.AvgPool2d(_pair2(node.kernel_size), _pair2(node.stride), _pair2(node.padding), step_mode="m")


def _sumpool_module(node, ctx: NIRImportContext) -> SumPool2d:
    return SumPool2d(_pair2(node.kernel_size), _pair2(node.stride), _pair2(node.padding))


def _flatten_module(node, ctx: NIRImportContext) -> layers.Flatten:
    """snn's dims count the batch: ``start_dim + 1`` / ``end_dim + 1`` (negative dims unchanged)."""
    shift = lambda d: d + 1 if d >= 0 else d  # noqa: E731
    start, end = _ints(node.start_dim, ctx.name, "start_dim")[0], _ints(node.end_dim, ctx.name, "end_dim")[0]
    return layers.Flatten(start_dim=shift(start), end_dim=shift(end), step_mode="m")


def _unsupported_node(node, name: str) -> ValueError:
    return ValueError(f"node {name!r} is a NIR {type(node).__name__}, which has no snn counterpart; supported: "
                      f"Input, Output, {', '.join(importable())}, NIRGraph (a subgraph, flattened), a neuron in a "
                      f"cycle with one Affine/Linear (recurrent layer)")


def _out_shape(m: nn.Module, shape: tuple, name: str) -> tuple:
    """The sample shape after the stateless layer ``m`` (run on the meta device: no memory, any size)."""
    try:
        probe = copy.deepcopy(m).to("meta")
        with torch.no_grad():
            return tuple(plain_forward(probe, torch.empty(1, *shape, device="meta")).shape[1:])
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise ValueError(f"node {name!r} does not accept input of shape {shape}: {e}") from None


def _input_shape(node, name: str) -> tuple:
    shape = np.atleast_1d(np.asarray(next(iter(node.input_type.values()), None)))
    if shape.dtype.kind not in "iuf" or shape.size == 0 or np.any(shape < 1) or np.any(shape != np.round(shape)):
        raise ValueError(f"Input node {name!r} has shape {shape.tolist()}; it must be positive integers")
    return tuple(int(s) for s in shape)


def _recurrent_module(neuron, node, name: str, shape: tuple, rec_name: str) -> Recurrent:
    """A neuron in a cycle with one Linear/Affine: :class:`Recurrent` without an input connection."""
    nir = _nir()
    n = math.prod(shape)
    w = _weight(node, rec_name, 2)
    if len(shape) != 1 or w.shape != (n, n):
        raise ValueError(f"recurrent node {rec_name!r} of {name!r}: weight {tuple(w.shape)} must be "
                         f"[{n}, {n}] over a flat layer (neuron shape {shape})")
    b = _bias(node, rec_name, n) if isinstance(node, nir.Affine) else None
    return Recurrent.feedback(neuron, n, w, bias=b)


_SUBGRAPH_EDGES = {("input", "w_in"), ("w_in", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"),
                   ("neuron", "output")}


def _recurrent_roles(graph) -> dict | None:
    """Role -> inner node name when ``graph`` is a recurrent layer with its input connection, as
    :func:`to_nir` writes it: ``input -> w_in (Affine/Linear) -> neuron <-> w_rec (Linear) -> output``; else None
    (the subgraph is then flattened into its nodes)."""
    nir = _nir()
    kinds = {"input": (nir.Input,), "output": (nir.Output,), "w_in": (nir.Affine, nir.Linear), "w_rec": (nir.Linear,)}
    nodes = dict(graph.nodes)
    if len(nodes) != 5:
        return None
    roles = {}
    for role, types in kinds.items():
        hits = [k for k, n in nodes.items() if type(n) in types and k not in roles.values()]
        if role == "w_in":      # the Linear/Affine fed by the input
            hits = [k for k in hits if any(a in roles.values() and b == k for a, b in _edge_list(graph.edges, ""))]
        if len(hits) != 1:
            return None
        roles[role] = hits[0]
    rest = [k for k in nodes if k not in roles.values()]
    if len(rest) != 1 or not _is_neuron(nodes[rest[0]]):
        return None
    roles["neuron"] = rest[0]
    edges = {(a, b) for a, b in _edge_list(graph.edges, "")}
    want = {(roles[a], roles[b]) for a, b in _SUBGRAPH_EDGES}
    return roles if edges == want else None


def _subgraph_module(graph, ctx: NIRImportContext) -> Recurrent:
    """A :class:`Recurrent` (with its input connection) from the subgraph :func:`to_nir` writes for one."""
    nir = _nir()
    roles = _recurrent_roles(graph)
    nodes = dict(graph.nodes)
    name = lambda role: f"{ctx.name}.{roles[role]}"  # noqa: E731
    w_in, w_rec = nodes[roles["w_in"]], nodes[roles["w_rec"]]
    w = _weight(w_in, name("w_in"), 2)
    if w.shape[1] != ctx.n:
        raise ValueError(f"node {name('w_in')!r}: weight {tuple(w.shape)} must take the {ctx.n} inputs it receives")
    n = w.shape[0]
    neuron_node = nodes[roles["neuron"]]
    inner = _import_context(neuron_node, name("neuron"), ctx.dt, n, ctx.backend)
    neuron = _module(neuron_node, _import_mapping(neuron_node), inner)
    m = Recurrent(ctx.n, n, neuron, bias=isinstance(w_in, nir.Affine), step_mode="m")
    rec = _weight(w_rec, name("w_rec"), 2)
    if rec.shape != (n, n):
        raise ValueError(f"node {name('w_rec')!r}: weight {tuple(rec.shape)} must be [{n}, {n}]")
    with torch.no_grad():
        m.weight.copy_(w)
        m.recurrent_weight.copy_(rec)
        if m.bias is not None:
            m.bias.copy_(_bias(w_in, name("w_in"), n))
    return m


def _delay_module(node, ctx: NIRImportContext) -> Delay:
    """NIR's ``Delay`` in whole snn steps: ``d = τ/dt``, which must be a whole number >= 0."""
    steps = np.asarray(node.delay, dtype=np.float64) / ctx.dt
    whole = np.round(steps)
    if steps.size == 0 or not np.allclose(steps, whole, rtol=0, atol=1e-6):
        raise ValueError(f"delay {np.asarray(node.delay).ravel()[:4].tolist()} s must be whole multiples of "
                         f"dt = {ctx.dt:g} s (snn delays are whole time steps)")
    if steps.size != ctx.n:
        raise ValueError(f"delay has {steps.size} values for {ctx.n} inputs")
    return Delay(torch.as_tensor(whole.astype(np.int64)), step_mode="m")


def _graph_dt(graph, dt, where: str) -> float:
    """``dt`` if given, else the graph's ``metadata['dt']``, else :data:`DEFAULT_DT`; checked finite and > 0."""
    if dt is not None:
        return check_dt(dt, "from_nir")
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict) or "dt" not in meta:
        return DEFAULT_DT
    who = f"from_nir: {where}'s metadata['dt']"
    value = np.asarray(meta["dt"])
    if value.size != 1 or value.dtype.kind not in "iuf":
        raise ValueError(f"{who} must be one number of seconds per step, got {meta['dt']!r} (pass dt= to override)")
    try:
        return check_dt(value.item(), who)
    except ValueError as e:
        raise ValueError(f"{e} (pass dt= to override it)") from None


def _build(graph, dt: float, backend: str) -> nn.Sequential:
    """The snn network of a graph (see :func:`from_nir`)."""
    nodes, edges = _flatten(dict(graph.nodes), _edge_list(graph.edges, "the graph"))
    _check_nodes_finite(nodes)
    first, order, rec = _chain(nodes, edges)
    shape = _input_shape(nodes[first], first)
    mods = []
    for name in order:
        node = nodes[name]
        mapping = _import_mapping(node)
        if mapping is None:
            raise _unsupported_node(node, name)
        ctx = _import_context(node, name, dt, math.prod(shape), backend)
        if mapping.kind == "recurrent" and len(shape) != 1:
            raise ValueError(f"recurrent subgraph {name!r} receives samples of shape {shape}; it takes flat ones")
        m = _module(node, mapping, ctx)
        if mapping.kind == "neuron" and name in rec:
            m = _recurrent_module(m, nodes[rec[name]], name, shape, rec[name])
        elif mapping.kind == "recurrent":
            shape = (m.out_features,)
        elif mapping.kind == "layer":
            shape = _out_shape(m, shape, name)
        mods.append(m)
    return nn.Sequential(*mods)


# What building a network from foreign node contents can raise; all are reported as a bad graph.
_BAD_GRAPH = (ValueError, TypeError, RuntimeError, IndexError, KeyError, ZeroDivisionError, AttributeError,
              OverflowError, AssertionError)


def from_nir(graph, dt: float | None = None, backend: str = "auto") -> nn.Sequential:
    """An snn ``nn.Sequential`` (step mode 'm': input ``[T, B, ...]``) from an ``nir.NIRGraph`` or a file path.

    ``dt`` (seconds per step, finite and > 0) defaults to the graph's ``metadata['dt']`` when present, else
    ``1e-4`` (SpikingJelly's default). ``backend`` is given to every neuron. Every neuron fires on
    ``v > v_threshold`` (``strict_threshold=True``), as NIR says. A node snn cannot express, a graph that is not
    a chain, a NaN/Inf parameter or a shape that does not fit is a ``ValueError`` naming the node (and the file).
    """
    nir = _nir()
    where = "graph"
    if not isinstance(graph, nir.NIRGraph):
        if isinstance(graph, nir.NIRNode):
            raise TypeError(f"from_nir: expected an nir.NIRGraph or a file path, got a single "
                            f"{type(graph).__name__} node")
        where = f"NIR file {graph}"
        graph = read_nir(graph)
    dt = _graph_dt(graph, dt, where)
    try:
        return _build(graph, dt, backend)
    except _BAD_GRAPH as e:
        detail = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"from_nir ({where}): {detail}") from None


def _register_builtins() -> None:
    """snn's own NIR mappings of its layers, both ways where NIR has the node (the neurons' are in their specs)."""
    stateless = ((layers.Linear, _linear_node, ("Affine", "Linear"), _affine_module), (nn.Linear, _linear_node),
                 (layers.Conv1d, _conv_node, "Conv1d", _conv_module), (nn.Conv1d, _conv_node),
                 (layers.Conv2d, _conv_node, "Conv2d", _conv_module), (nn.Conv2d, _conv_node),
                 (ScaledWSConv2d, _ws_conv_node),
                 (layers.AvgPool2d, _avgpool_node, "AvgPool2d", _avgpool_module), (nn.AvgPool2d, _avgpool_node),
                 (SumPool2d, _sumpool_node, "SumPool2d", _sumpool_module),
                 (layers.Flatten, _flatten_node, "Flatten", _flatten_module), (nn.Flatten, _flatten_node))
    for cls, to_nir_fn, *back in stateless:
        register_nir(cls, to_nir_fn, kind="layer", node=back[0] if back else None,
                     from_nir=back[1] if back else None, builtin=True)
    for cls in (*DROPOUT, nn.Identity):
        register_nir(cls, None, kind="dropped", builtin=True)
    register_nir(Recurrent, _recurrent_nodes, kind="recurrent", builtin=True)
    register_nir(Delay, _delay_node, kind="elementwise", node="Delay", from_nir=_delay_module, builtin=True)


_register_builtins()
