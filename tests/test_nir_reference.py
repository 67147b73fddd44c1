"""NIR import against an independent float64 forward-Euler reading of the NIR equations, written here.

The reference reads the NIR spec (the node docstrings of the ``nir`` package and the NIR paper), with one step of
``dt`` seconds per input step and forward Euler, the input of step ``t`` entering step ``t``::

    Affine   y = W x + b          Linear  y = W x         Flatten  reshape (dims exclude the batch)
    Delay    y(t) = x(t - delay): the input delay/dt steps earlier (0 before t = 0)
    Conv1d/Conv2d  cross-correlation with stride, padding, dilation, groups, plus bias
    SumPool2d / AvgPool2d  sum / mean over each window
    IF       v += dt·r·I
    LIF      v += dt/tau·(v_leak - v + r·I)
    CubaLIF  i += dt/tau_syn·(w_in·I - i);  v += dt/tau_mem·(v_leak - v + r·i)   (the new current)
    spike    z = v > v_threshold;  v = v_reset where z;   at rest before t = 0: v = v_reset, i = 0, z = 0

A node's input is the sum of its incoming edges (a nested graph is inlined). An edge that closes a cycle (found
by depth-first search from the input) carries the value its source had one step earlier; before t = 0 that is
the source's response to a network at rest (no spikes), so a recurrent ``Affine`` gives ``W·S[t-1] + b`` with
``S[-1] = 0``.

Two families of random graphs, over every node type the importer accepts:

- *exact*: dyadic weights, thresholds, time constants and ``dt`` (multiples of 1/4, powers of two), so every
  float32 and float64 operation is exact: spikes must be identical, and potentials land exactly on thresholds
  (the tie case ``v == v_threshold``, where NIR does not fire) many times per graph;
- *generic*: random float parameters; a case is kept only when no potential comes within ``MARGIN`` of its
  threshold in the reference (so float32 rounding cannot flip a spike), and then spikes must be identical.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import snn

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

MARGIN = 1e-3               # generic graphs: closest |v - v_threshold| the reference may reach


# ----------------------------------------------------------------------------------------------------------------
# The reference
# ----------------------------------------------------------------------------------------------------------------
def _conv2d(x, w, b, stride, padding, dilation, groups):
    """Cross-correlation ``x [B, C, H, W]`` with ``w [O, C/groups, kh, kw]`` (float64, numpy)."""
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = (H - dh * (kh - 1) - 1) // sh + 1, (W - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((B, O, Ho, Wo))
    og = O // groups
    for g in range(groups):
        xs = x[:, g * Cg:(g + 1) * Cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("bchw,oc->bohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out + b.reshape(1, O, 1, 1)


def _pool(x, k, s, op):
    B, C, H, W = x.shape
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    win = np.stack([x[:, :, i:i + s[0] * (Ho - 1) + 1:s[0], j:j + s[1] * (Wo - 1) + 1:s[1]]
                    for i in range(k[0]) for j in range(k[1])])
    return win.sum(0) if op == "sum" else win.mean(0)


def _pair(v):
    a = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _stateless(node, x):
    """A stateless node on ``x [B, *shape]`` (float64)."""
    if isinstance(node, nir.Affine):
        return x @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias, np.float64)
    if isinstance(node, nir.Linear):
        return x @ np.asarray(node.weight, np.float64).T
    if isinstance(node, nir.Conv2d):
        return _conv2d(x, np.asarray(node.weight, np.float64), np.asarray(node.bias, np.float64), _pair(node.stride),
                       _pair(node.padding), _pair(node.dilation), int(node.groups))
    if isinstance(node, nir.Conv1d):
        w = np.asarray(node.weight, np.float64)[:, :, None, :]
        y = _conv2d(x[:, :, None, :], w, np.asarray(node.bias, np.float64), (1, int(np.ravel(node.stride)[0])),
                    (0, int(np.ravel(node.padding)[0])), (1, int(np.ravel(node.dilation)[0])), int(node.groups))
        return y[:, :, 0, :]
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        assert not np.any(node.padding), "reference pools without padding"
        return _pool(x, _pair(node.kernel_size), _pair(node.stride), "sum" if isinstance(node, nir.SumPool2d)
                     else "mean")
    if isinstance(node, nir.Flatten):
        nd = x.ndim - 1
        start, end = int(node.start_dim) % nd + 1, int(node.end_dim) % nd + 1
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1:])
    raise NotImplementedError(type(node).__name__)


class _Neuron:
    """State and one forward-Euler step of an IF / LIF / CubaLIF node (float64); records the closest approach
    of ``v`` to the threshold and how often ``v`` lands exactly on it."""

    def __init__(self, node, dt, shape):
        self.node, self.dt = node, dt
        p = lambda name: np.broadcast_to(np.asarray(getattr(node, name), np.float64), shape)  # noqa: E731
        self.p = p
        self.v = p("v_reset").copy()
        self.i = np.zeros(shape)
        self.margin, self.ties, self.f32_exact = math.inf, 0, True

    def step(self, x):
        p, dt, node = self.p, self.dt, self.node
        if isinstance(node, nir.IF):
            self.v = self.v + dt * p("r") * x
        elif isinstance(node, nir.LIF):
            self.v = self.v + dt / p("tau") * (p("v_leak") - self.v + p("r") * x)
        else:  # CubaLIF
            self.i = self.i + dt / p("tau_syn") * (p("w_in") * x - self.i)
            self.v = self.v + dt / p("tau_mem") * (p("v_leak") - self.v + p("r") * self.i)
        th = p("v_threshold")
        self.f32_exact &= all(bool(np.all(a == a.astype(np.float32))) for a in (self.v, self.i))
        self.margin = min(self.margin, float(np.abs(self.v - th).min()))
        self.ties += int((self.v == th).sum())
        z = self.v > th
        self.v = np.where(z, p("v_reset"), self.v)
        return z.astype(np.float64)


class _Delay:
    """NIR's ``Delay``, ``y(t) = x(t - τ)``, on the step grid: the input ``τ/dt`` steps earlier (0 before t = 0)."""

    def __init__(self, node, dt, shape):
        steps = np.broadcast_to(np.asarray(node.delay, np.float64) / dt, shape)
        assert np.all(steps == np.round(steps)), "reference delays are whole steps"
        self.steps, self.seen = steps.astype(int), []

    def step(self, x):
        self.seen.append(x)
        t = len(self.seen) - 1
        past = np.stack([np.zeros_like(x)] + self.seen)     # past[k + 1] = input of step k
        src = np.maximum(t - self.steps, -1) + 1
        return np.take_along_axis(past, np.broadcast_to(src, x.shape)[None], 0)[0]


def _schedule(nodes, edges, first):
    """A node order from ``first`` in which every edge but the cycle-closing ones goes forward, and those edges."""
    succ = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
    state, post, back = {}, [], set()

    def visit(n):
        state[n] = "open"
        for m in succ[n]:
            if state.get(m) == "open":
                back.add((n, m))
            elif m not in state:
                visit(m)
        state[n] = "done"
        post.append(n)

    visit(first)
    return post[::-1], back


def _inline(graph, prefix=""):
    """Nodes and edges of ``graph`` with nested graphs inlined: a subgraph's Input and Output nodes stay as
    pass-through nodes named ``<sub>/<name>``."""
    nodes, edges = {}, []
    ends = {}
    for k, n in graph.nodes.items():
        if isinstance(n, nir.NIRGraph):
            sub_nodes, sub_edges = _inline(n, f"{prefix}{k}/")
            nodes.update(sub_nodes)
            edges += sub_edges
            ends[k] = (next(f"{prefix}{k}/{j}" for j, m in n.nodes.items() if isinstance(m, nir.Input)),
                       next(f"{prefix}{k}/{j}" for j, m in n.nodes.items() if isinstance(m, nir.Output)))
        else:
            nodes[prefix + k] = n
    for a, b in graph.edges:
        edges.append((ends[a][1] if a in ends else prefix + a, ends[b][0] if b in ends else prefix + b))
    return nodes, edges


def nir_reference(graph, x: np.ndarray, dt: float):
    """Output spikes ``[T, B, ...]`` of ``graph`` for input ``x [T, B, *in_shape]`` (float64 forward Euler), and
    the neurons' closest approach to the threshold, number of exact ties, and whether every state was a float32
    value (the premise of the exact family)."""
    nodes, edges = _inline(graph)
    first = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    last = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Output))
    order, back = _schedule(nodes, edges, first)
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    stateful = {}

    def run_step(xt, prev, rest):
        out = {}
        for n in order:
            node = nodes[n]
            if n == first:
                out[n] = xt
                continue
            fwd = [out[p] for p in preds[n] if (p, n) not in back]
            ins = fwd + ([] if rest else [prev[p] for p in preds[n] if (p, n) in back])
            total = sum(ins)
            if isinstance(node, (nir.Input, nir.Output)):       # a subgraph's ends, or the output
                out[n] = total
            elif isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.Delay)):
                if rest:
                    out[n] = np.zeros_like(total)
                else:
                    kind = _Delay if isinstance(node, nir.Delay) else _Neuron
                    stateful.setdefault(n, kind(node, dt, total.shape))
                    out[n] = stateful[n].step(total)
            else:
                out[n] = _stateless(node, total)
        return out

    prev = run_step(np.zeros_like(x[0], dtype=np.float64), None, rest=True)
    spikes = []
    for xt in x.astype(np.float64):
        prev = run_step(xt, prev, rest=False)
        spikes.append(prev[last])
    neurons = [nr for nr in stateful.values() if isinstance(nr, _Neuron)]
    margin = min((nr.margin for nr in neurons), default=math.inf)
    return (np.stack(spikes), margin, sum(nr.ties for nr in neurons), all(nr.f32_exact for nr in neurons))


CPU_BACKENDS = [b for b in ("torch", "cpp") if b in snn.ops.available_backends()]


def snn_run(graph, x: np.ndarray, dt: float, backend: str = "torch") -> np.ndarray:
    net = from_nir(graph, dt=dt, backend=backend)
    snn.reset(net)
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


# ----------------------------------------------------------------------------------------------------------------
# Random graphs
# ----------------------------------------------------------------------------------------------------------------
class _Draw:
    """Parameters for one random graph: dyadic (exact) or generic floats."""

    def __init__(self, rng: np.random.Generator, exact: bool):
        self.rng, self.exact = rng, exact
        self.dt = 2.0 ** -int(rng.integers(0, 12)) if exact else float(rng.choice([1e-3, 1e-4, 2.5e-4]))

    def weights(self, shape, fan_in):
        if self.exact:
            return (self.rng.integers(-2, 5, shape) / 4).astype(np.float32)
        return ((self.rng.normal(0, 1, shape) + 0.5) * 2.0 / math.sqrt(fan_in)).astype(np.float32)

    def value(self, lo, hi):
        if self.exact:
            return float(self.rng.integers(round(lo * 4), round(hi * 4) + 1) / 4)
        return float(self.rng.uniform(lo, hi))

    def steps(self):
        """A time constant in steps (tau/dt): 1 or 2 (exact: a decay of 1/2 adds one bit per step, so T = 12
        steps stay within float32's 24 bits) or uniform in [1, 8]."""
        return float(self.rng.integers(1, 3)) if self.exact else float(self.rng.uniform(1, 8))

    def neuron(self, kind, n):
        full = lambda v: np.full(n, v, np.float32)  # noqa: E731
        th = self.value(0.5, 1.5)
        if kind == "IF":
            return nir.IF(r=full(1 / self.dt), v_threshold=full(th), v_reset=full(self.value(-0.5, 0.0)))
        if kind == "LIF":
            k = self.steps()
            vr = self.value(-0.5, 0.0)
            r = 1.0 if self.rng.random() < 0.5 else k
            return nir.LIF(tau=full(k * self.dt), r=full(r), v_leak=full(vr), v_threshold=full(th), v_reset=full(vr))
        ks, km = self.steps(), self.steps()
        return nir.CubaLIF(tau_syn=full(ks * self.dt), tau_mem=full(km * self.dt), w_in=full(ks), r=full(km),
                           v_leak=full(self.value(-0.25, 0.5)), v_threshold=full(th), v_reset=full(0.0))


def random_graph(seed: int, exact: bool):
    """A random chain: [Conv2d/Conv1d -> neuron -> pool] -> Flatten -> Affine/Linear -> neuron (maybe recurrent
    through an Affine with bias or a Linear) -> Affine/Linear -> neuron -> output. Returns (graph, dt, in_shape)."""
    rng = np.random.default_rng(seed)
    d = _Draw(rng, exact)
    nodes, chain = {}, []
    kinds = ["IF", "LIF", "CubaLIF"]
    conv = rng.choice(["conv2d", "conv1d", "none"])
    if conv == "conv2d":
        in_shape = (2, 6, 6)
        groups = int(rng.choice([1, 2]))
        w = d.weights((4, 2 // groups, 3, 3), 18 // groups)
        nodes["conv"] = nir.Conv2d(input_shape=(6, 6), weight=w, stride=1, padding=1, dilation=1, groups=groups,
                                   bias=d.weights((4,), 4))
        nodes["n0"] = d.neuron(rng.choice(kinds), (4, 6, 6))
        pool = rng.choice(["SumPool2d", "AvgPool2d"])
        nodes["pool"] = getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                           padding=np.array([0, 0]))
        chain += ["conv", "n0", "pool"]
        flat_in, n_flat = (4, 3, 3), 36
    elif conv == "conv1d":
        in_shape = (2, 8)
        nodes["conv"] = nir.Conv1d(input_shape=8, weight=d.weights((3, 2, 3), 6), stride=1, padding=1, dilation=1,
                                   groups=1, bias=d.weights((3,), 3))
        nodes["n0"] = d.neuron(rng.choice(kinds), (3, 8))
        chain += ["conv", "n0"]
        flat_in, n_flat = (3, 8), 24
    else:
        in_shape = (int(rng.integers(4, 9)),)
        flat_in, n_flat = in_shape, in_shape[0]
    if len(flat_in) > 1:
        nodes["flat"] = nir.Flatten(input_type={"input": np.array(flat_in)}, start_dim=0, end_dim=-1)
        chain.append("flat")
    sizes = [n_flat, int(rng.integers(5, 10)), int(rng.integers(3, 7))]
    for layer in range(2):
        n_in, n = sizes[layer], sizes[layer + 1]
        aff = f"fc{layer}"
        w = d.weights((n, n_in), n_in)
        nodes[aff] = nir.Affine(w, d.weights((n,), 4)) if rng.random() < 0.6 else nir.Linear(w)
        nodes[f"n{layer + 1}"] = d.neuron(rng.choice(kinds), (n,))
        chain += [aff, f"n{layer + 1}"]
    nodes["input"] = nir.Input(input_type={"input": np.array(in_shape)})
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges = list(zip(["input"] + chain, chain + ["output"]))
    if rng.random() < 0.7:      # the first dense neuron layer is recurrent
        n = sizes[1]
        w = d.weights((n, n), n) * (0.5 if not exact else 1)
        nodes["n1.rec"] = nir.Affine(w, d.weights((n,), 4)) if rng.random() < 0.7 else nir.Linear(w)
        edges += [("n1", "n1.rec"), ("n1.rec", "n1")]
    if rng.random() < 0.5:      # whole-step delays on the input
        nodes["delay"] = nir.Delay(delay=rng.integers(0, 3, in_shape) * d.dt)
        edges = [("input", "delay"), ("delay", edges[0][1])] + edges[1:]
    if "n1.rec" in nodes and rng.random() < 0.6:
        nodes, edges = _as_subgraph(nodes, edges, sizes[:2])
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), d.dt, in_shape


def _as_subgraph(nodes, edges, sizes):
    """The recurrent layer ``fc0 -> n1 <-> n1.rec`` as one subgraph node ``r1`` (input -> w_in -> neuron <->
    w_rec -> output, snnTorch's form for its recurrent layers)."""
    inner = {"fc0": "w_in", "n1": "neuron", "n1.rec": "w_rec"}
    sub = {new: nodes.pop(old) for old, new in inner.items()}
    sub["input"] = nir.Input(input_type={"input": np.array([sizes[0]])})
    sub["output"] = nir.Output(output_type={"output": np.array([sizes[1]])})
    sub_edges = [("input", "w_in"), ("w_in", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"),
                 ("neuron", "output")]
    nodes["r1"] = nir.NIRGraph(nodes=sub, edges=sub_edges, type_check=False)
    outer = [("r1" if a in inner else a, "r1" if b in inner else b) for a, b in edges if not (a in inner and b in inner)]
    return nodes, outer


def _inputs(seed, in_shape, T=12, B=3):
    return (np.random.default_rng(seed + 1000).random((T, B, *in_shape)) < 0.5).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("seed", range(12))
def test_exact_graphs_match_the_reference_including_ties(seed, backend):
    graph, dt, in_shape = random_graph(seed, exact=True)
    x = _inputs(seed, in_shape)
    ref, _, _, exact = nir_reference(graph, x, dt)
    assert exact, "the exact family must stay within float32"
    got = snn_run(graph, x, dt, backend)
    assert ref.shape == got.shape
    np.testing.assert_array_equal(got, ref)
    assert ref.sum() > 0


def test_exact_graphs_exercise_ties_and_every_node_type():
    """The exact family reaches the tie ``v == v_threshold`` and covers every node type the importer accepts,
    recurrent layers written flat and as subgraphs (with a Linear feedback: snn's Recurrent; with an Affine one:
    flattened)."""
    ties, kinds, recurrent = 0, set(), set()
    for seed in range(12):
        graph, dt, in_shape = random_graph(seed, exact=True)
        ties += nir_reference(graph, _inputs(seed, in_shape), dt)[2]
        nodes = _inline(graph)[0]
        kinds |= {type(n).__name__ for n in [*graph.nodes.values(), *nodes.values()]}
        for neuron, rec in (("n1", "n1.rec"), ("r1/neuron", "r1/w_rec")):
            if rec in nodes:
                recurrent.add(f"{neuron[:2]}:{type(nodes[neuron]).__name__}/{type(nodes[rec]).__name__}")
    assert ties > 50
    assert {"Affine", "Linear", "IF", "LIF", "CubaLIF", "Conv2d", "Conv1d", "Flatten", "SumPool2d",
            "AvgPool2d", "Delay", "NIRGraph"} <= kinds
    assert any("CubaLIF/Affine" in r for r in recurrent) and any(":LIF/" in r for r in recurrent)
    assert any(r.startswith("n1:") for r in recurrent)
    assert {"r1:" + k for k in ("Linear", "Affine")} <= {r[:3] + r.split("/")[1] for r in recurrent}


def _generic_cases(n_cases: int):
    """Seeds of generic graphs whose reference potentials stay at least MARGIN away from every threshold."""
    seeds, seed = [], 0
    while len(seeds) < n_cases:
        graph, dt, in_shape = random_graph(100 + seed, exact=False)
        margin = nir_reference(graph, _inputs(100 + seed, in_shape), dt)[1]
        if margin > MARGIN:
            seeds.append(100 + seed)
        seed += 1
        assert seed < 20 * n_cases, "too few graphs without near-ties: lower MARGIN or T"
    return seeds


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("seed", _generic_cases(8))
def test_generic_graphs_match_the_reference(seed, backend):
    graph, dt, in_shape = random_graph(seed, exact=False)
    x = _inputs(seed, in_shape)
    ref, margin = nir_reference(graph, x, dt)[:2]
    assert margin > MARGIN
    np.testing.assert_array_equal(snn_run(graph, x, dt, backend), ref)
    assert ref.sum() > 0


def test_generic_graphs_through_a_file(tmp_path):
    seed = _generic_cases(1)[0]
    graph, dt, in_shape = random_graph(seed, exact=False)
    path = tmp_path / "g.nir"
    nir.write(str(path), graph)
    x = _inputs(seed, in_shape)
    np.testing.assert_array_equal(snn_run(str(path), x, dt), nir_reference(graph, x, dt)[0])


def braille_like_graph(seed=0, n_in=12, n_hidden=16, n_out=7, dt=1e-4):
    """The structure of NIR's braille-reading example (exported by snnTorch, used by NIR and Norse): Affine ->
    CubaLIF recurrent through an Affine *with a bias* -> Affine -> CubaLIF, with snnTorch's parameter forms
    (tau = dt/(1 - alpha), w_in = tau_syn/dt, r = tau_mem/dt, v_leak = 0)."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731

    def cuba(n, alpha, beta, th):
        tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
        return nir.CubaLIF(tau_syn=f32(np.full(n, tau_syn)), tau_mem=f32(np.full(n, tau_mem)),
                           r=f32(np.full(n, tau_mem / dt)), v_leak=f32(np.zeros(n)), w_in=f32(np.full(n, tau_syn / dt)),
                           v_threshold=f32(np.full(n, th)), v_reset=f32(np.zeros(n)))

    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(f32(rng.normal(0.3, 0.5, (n_hidden, n_in))), f32(rng.normal(0, 0.1, n_hidden))),
        "lif1.lif": cuba(n_hidden, 0.8, 0.9, 1.0),
        "lif1.w_rec": nir.Affine(f32(rng.normal(0, 0.3, (n_hidden, n_hidden))), f32(rng.normal(0.15, 0.05, n_hidden))),
        "fc2": nir.Affine(f32(rng.normal(0.2, 0.5, (n_out, n_hidden))), f32(rng.normal(0, 0.1, n_out))),
        "lif2": cuba(n_out, 0.7, 0.85, 1.0),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif"),
             ("lif1.lif", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)


def test_recurrent_affine_bias_is_kept():
    """A recurrent CubaLIF layer whose recurrent Affine has a bias (the braille model's form): snn's import gives
    the reference's spikes; dropping the bias (the recurrent input W·S[t-1] alone) gives other spikes."""
    graph = braille_like_graph()
    x = (np.random.default_rng(5).random((40, 4, 12)) < 0.3).astype(np.float32)
    ref, margin = nir_reference(graph, x, 1e-4)[:2]
    got = snn_run(graph, x, 1e-4)
    assert margin > 1e-5 and ref.sum() > 50
    np.testing.assert_array_equal(got, ref)
    graph.nodes["lif1.w_rec"] = nir.Linear(graph.nodes["lif1.w_rec"].weight)
    no_bias = nir_reference(graph, x, 1e-4)[0]
    assert np.abs(no_bias - ref).sum() > 10, "the bias must matter in this test"


def test_recurrent_affine_bias_in_a_subgraph():
    """snnTorch's RSynaptic export nests the recurrent layer in a subgraph: it is flattened, bias kept."""
    flat = braille_like_graph(seed=1)
    n = flat.nodes
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([16])}), "lif": n["lif1.lif"],
                              "w_rec": n["lif1.w_rec"], "output": nir.Output(output_type={"output": np.array([16])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    nested = nir.NIRGraph(nodes={"input": n["input"], "fc1": n["fc1"], "lif1": sub, "fc2": n["fc2"], "lif2": n["lif2"],
                                 "output": n["output"]},
                          edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                                 ("lif2", "output")], type_check=False)
    x = (np.random.default_rng(6).random((30, 2, 12)) < 0.3).astype(np.float32)
    ref = nir_reference(flat, x, 1e-4)[0]
    assert ref.sum() > 20
    np.testing.assert_array_equal(snn_run(nested, x, 1e-4), ref)
