"""Recurrent spiking layers and synaptic delays (snn.recurrent): step modes, backends, a hand-written loop, state,
delay semantics on hand cases, bad input."""
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error

import snn
from snn import layers, neurons, ops
from snn.neuron import CUBALIF, IF, LIF
from snn.recurrent import Delay, Recurrent

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir, read_nir, to_nir, write_nir  # noqa: E402
from test_nir_reference import nir_reference  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
BACKENDS = [b for b in ops.available_backends() if b != "triton"]   # triton: the interpreter run below


def _dyadic_(layer: Recurrent, seed: int) -> Recurrent:
    """Weights and bias in multiples of 1/4: every sum is exact in float32, whatever the summation order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (layer.weight, layer.recurrent_weight, layer.bias):
            if p is not None:
                p.copy_(torch.randint(-2, 4, p.shape, generator=g) / 4)
    return layer


def _spikes(T=12, B=3, n=6, seed=1):
    return (torch.rand(T, B, n, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def _run(layer, x, mode):
    snn.reset(layer)
    layer.step_mode = mode
    return layer(x) if mode == "m" else torch.stack([layer(xt) for xt in x])


def _hand_lif(layer: Recurrent, x, tau=2.0, v_th=1.0, v_reset=0.0):
    """The recurrent LIF layer written out: I = W_in·x + b + W_rec·S[t-1]; H = V + (I - (V - V_r))/tau;
    S = H >= V_th; V = H·(1 - S) + V_r·S."""
    w, b, wr = layer.weight.detach(), layer.bias.detach(), layer.recurrent_weight.detach()
    s = torch.zeros(x.shape[1], wr.shape[0])
    v = torch.full_like(s, v_reset)
    out = []
    for x_t in x:
        i = x_t @ w.t() + b + s @ wr.t()
        h = v + (i - (v - v_reset)) / tau
        s = (h >= v_th).float()
        v = h * (1 - s) + v_reset * s
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_recurrent_lif_equals_a_hand_written_loop_in_both_step_modes(backend):
    layer = _dyadic_(Recurrent(6, 5, "lif", tau=2.0, backend=backend), seed=2)
    x = _spikes()
    ref = _hand_lif(layer, x)
    with torch.no_grad():
        got_m, got_s = _run(layer, x, "m"), _run(layer, x, "s")
    assert 10 < ref.sum() < ref.numel() - 10, "the layer must both fire and stay silent for the test to mean much"
    assert torch.equal(got_m, ref) and torch.equal(got_s, ref)
    assert layer.neuron.last_backend == backend


@pytest.mark.parametrize("name", neurons.names())
def test_every_neuron_recurrent_step_modes_identical_with_gradients(name):
    """Random float weights: 's' and 'm' compute every step with the same operations, so spikes and gradients
    agree bit for bit, on every backend here; backends agree on the spikes."""
    torch.manual_seed(0)
    x = torch.rand(10, 2, 4) * 3
    spikes, grads = {}, {}
    for backend in BACKENDS:
        torch.manual_seed(3)
        layer = Recurrent(4, 6, name, backend=backend)
        with torch.no_grad():
            layer.weight.mul_(4)
        for mode in ("m", "s"):
            layer.zero_grad()
            x_ = x.clone().requires_grad_(True)
            out = _run(layer, x_, mode)
            (out * torch.arange(1.0, 7.0)).sum().backward()
            spikes[backend, mode] = out.detach()
            grads[backend, mode] = [x_.grad, layer.weight.grad.clone(), layer.recurrent_weight.grad.clone()]
        assert torch.equal(spikes[backend, "m"], spikes[backend, "s"]), (name, backend)
        for a, b in zip(grads[backend, "m"], grads[backend, "s"]):
            assert torch.equal(a, b), (name, backend)
    ref = spikes[BACKENDS[0], "m"]
    assert ref.sum() > 0
    for backend in BACKENDS[1:]:
        assert torch.equal(spikes[backend, "m"], ref), (name, backend)
        for a, b in zip(grads[backend, "m"], grads[BACKENDS[0], "m"]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_state_carries_across_calls_and_reset_clears_it():
    torch.manual_seed(0)
    layer = Recurrent(6, 5, "lif", step_mode="m")
    _dyadic_(layer, 4)
    x = _spikes(T=10)
    with torch.no_grad():
        whole = layer(x)
        snn.reset(layer)
        halves = torch.cat([layer(x[:4]), layer(x[4:])])
        snn.reset(layer)
        again = layer(x)
    assert torch.equal(whole, halves) and torch.equal(whole, again)
    assert layer.s is not None
    layer.s.requires_grad_(True)
    from snn.train.ottt import detach_states

    detach_states(layer)
    assert not layer.s.requires_grad
    snn.functional.reset(layer)
    assert layer.s is None and layer.neuron.v is None


def test_neuron_module_and_feedback_form():
    """A neuron module is used as given; without an input connection I[t] = x[t] + W_rec·S[t-1] + b."""
    neuron = CUBALIF(du=0.5, dv=0.5, v_threshold=0.5, backend="torch")
    w = torch.tensor([[0.0, 0.5], [-0.25, 0.0]])
    layer = Recurrent.feedback(neuron, 2, w, bias=torch.tensor([0.25, 0.0]))
    assert layer.neuron is neuron and layer.weight is None
    x = _spikes(T=8, B=2, n=2, seed=5)
    ref_neuron = CUBALIF(du=0.5, dv=0.5, v_threshold=0.5, backend="torch")
    s, ref = torch.zeros(2, 2), []
    for x_t in x:
        s = ref_neuron(x_t + (s @ w.t() + torch.tensor([0.25, 0.0])))
        ref.append(s)
    with torch.no_grad():
        got = layer(x)
    assert torch.equal(got, torch.stack(ref)) and got.sum() > 0


def test_half_precision_input_runs_both_modes_alike():
    torch.manual_seed(0)
    layer = _dyadic_(Recurrent(6, 5, "lif"), 6)
    x = _spikes().bfloat16()
    with torch.no_grad():
        m, s = _run(layer, x, "m"), _run(layer, x, "s")
    assert m.dtype == torch.bfloat16 and torch.equal(m, s)
    assert torch.equal(m.float(), _hand_lif(layer, x.float()))


# ------------------------------------------------------------------------------------------------------------
# Delay
# ------------------------------------------------------------------------------------------------------------
def test_delay_hand_cases():
    x = torch.arange(1.0, 7.0).reshape(6, 1, 1).expand(6, 1, 3).clone()     # x[t] = t + 1 on 3 channels
    want = torch.tensor([[1, 0, 0], [2, 1, 0], [3, 2, 0], [4, 3, 1], [5, 4, 2], [6, 5, 3]], dtype=torch.float32)
    for mode in ("m", "s"):
        d = Delay([0, 1, 3], step_mode=mode)
        assert torch.equal(_run(d, x, mode)[:, 0], want), mode
        u = Delay(2, step_mode=mode)
        assert torch.equal(_run(u, x, mode)[:, 0, 0], torch.tensor([0.0, 0, 1, 2, 3, 4])), mode
    assert torch.equal(Delay(0, step_mode="m")(x), x)


def test_delay_per_channel_and_per_element_split_calls_and_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 2, 3, 2, 2, generator=g)
    per_channel = torch.tensor([2, 0, 4]).reshape(3, 1, 1)
    per_element = torch.randint(0, 5, (3, 2, 2), generator=g)
    for delays in (per_channel, per_element):
        full = delays.expand(3, 2, 2)
        want = torch.zeros_like(x)
        for t in range(9):
            src = t - full
            ok = src >= 0
            want[t] = torch.where(ok, x[src.clamp(min=0), :, torch.arange(3)[:, None, None], torch.arange(2)[:, None],
                                      torch.arange(2)].permute(3, 0, 1, 2), 0)
        d = Delay(delays, step_mode="m")
        assert torch.equal(d(x), want)
        snn.reset(d)
        assert torch.equal(torch.cat([d(x[:2]), d(x[2:7]), d(x[7:])]), want)
        assert torch.equal(_run(d, x, "s"), want)
    xg = x.clone().requires_grad_(True)
    Delay(per_channel, step_mode="m")(xg).sum().backward()
    # an input reaches the output only if it is at least d steps before the end
    assert torch.equal(xg.grad[:, 0, :, 0, 0], (torch.arange(9)[:, None] < 9 - torch.tensor([2, 0, 4])).float())


# ------------------------------------------------------------------------------------------------------------
# Export: NIR (a recurrent subgraph, a Delay node) and Loihi
# ------------------------------------------------------------------------------------------------------------
DT = 2.0 ** -10             # dyadic: every NIR parameter below is exact


def _export_net():
    """Delay -> Recurrent(LIF) -> Recurrent(CUBALIF) -> Linear -> IF with dyadic weights (multiples of 1/4)."""
    torch.manual_seed(0)
    kw = dict(step_mode="m", backend="torch")
    net = nn.Sequential(Delay(torch.tensor([0, 1, 2, 3, 0, 2]), step_mode="m"),
                        Recurrent(6, 8, "lif", tau=2.0, v_threshold=0.75, **kw),
                        Recurrent(8, 5, CUBALIF(du=0.5, dv=0.5, v_threshold=0.5, backend="torch"), bias=False,
                                  step_mode="m"),
                        layers.Linear(5, 3, step_mode="m"), IF(v_threshold=0.5, **kw))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-1, 4, p.shape, generator=g) / 4)
    return net


def _structure(graph, prefix=""):
    """Node name -> (NIR class, its arrays) and the edges, of a graph and its subgraphs."""
    nodes, edges = {}, sorted((prefix + a, prefix + b) for a, b in graph.edges)
    for k, n in graph.nodes.items():
        if isinstance(n, nir.NIRGraph):
            sub_nodes, sub_edges = _structure(n, f"{prefix}{k}.")
            nodes.update(sub_nodes)
            edges += sub_edges
        arrays = {f: np.asarray(v).tolist() for f, v in vars(n).items()
                  if f not in ("nodes", "edges", "metadata") and not isinstance(v, (dict, str))}
        nodes[prefix + k] = (type(n).__name__, arrays)
    return nodes, edges


def _seq(net, x):
    snn.reset(net)
    with torch.no_grad():
        return net(x)


def test_nir_round_trip_of_a_recurrent_network_and_a_delay(tmp_path):
    net, x = _export_net(), _spikes(T=16, n=6, seed=2)
    graph = to_nir(net, (6,), dt=DT)
    sub = graph.nodes["1"]
    assert isinstance(sub, nir.NIRGraph) and isinstance(graph.nodes["0"], nir.Delay)
    assert {k: type(n).__name__ for k, n in sub.nodes.items()} == {
        "input": "Input", "w_in": "Affine", "neuron": "LIF", "w_rec": "Linear", "output": "Output"}
    assert sorted(sub.edges) == sorted([("input", "w_in"), ("w_in", "neuron"), ("neuron", "w_rec"),
                                        ("w_rec", "neuron"), ("neuron", "output")])
    assert type(graph.nodes["2"].nodes["w_in"]).__name__ == "Linear"      # no bias
    assert graph.nodes["0"].delay.tolist() == [d * DT for d in (0, 1, 2, 3, 0, 2)]
    write_nir(graph, tmp_path / "rsnn.nir")
    back = from_nir(tmp_path / "rsnn.nir", backend="torch")
    assert [type(m).__name__ for m in back] == ["Delay", "Recurrent", "Recurrent", "Linear", "IF"]
    assert _structure(to_nir(back, (6,), dt=DT)) == _structure(graph)
    ref = _seq(net, x)
    assert ref.sum() > 10
    assert torch.equal(_seq(back, x), ref)
    spikes, _, ties, exact = nir_reference(read_nir(tmp_path / "rsnn.nir"), x.numpy(), DT)
    assert exact and np.array_equal(spikes, ref.numpy())


def test_norse_runs_the_recurrent_subgraph_with_the_same_spikes():
    """The subgraph is NIR's form of a recurrent layer as other frameworks read it (Norse, through nirtorch)."""
    norse = pytest.importorskip("norse.torch")
    net = nn.Sequential(*list(_export_net())[1:])
    x = _spikes(T=16, n=6, seed=3)
    ref = _seq(net, x)
    module, state, got = norse.from_nir(to_nir(net, (6,), dt=DT), dt=DT, ignore_warnings=True), None, []
    with torch.no_grad():
        for x_t in x:
            out, state = module(x_t, state)
            got.append(out)
    assert ref.sum() > 10 and torch.equal(torch.stack(got), ref)


def test_recurrent_lowers_to_loihi():
    """The input connection folds with the layers before it; the feedback is Lava's recurrent Dense."""
    from snn.export.loihi import emulate_float, lower

    net = nn.Sequential(*list(_export_net())[1:])
    x = _spikes(T=16, n=6, seed=4)
    cuba = lower(net, (6,))
    assert [L.name for L in cuba.layers] == ["0", "1", "3"] and cuba.layers[0].rec_weight.shape == (8, 8)
    ref = _seq(net, x)
    assert ref.sum() > 10 and torch.equal(emulate_float(cuba, x).float(), ref)


def test_export_refusals_name_the_layer():
    from snn.export.loihi import LoweringError, lower

    alif = nn.Sequential(Recurrent(4, 3, "alif"))
    expect_clear_error(lambda: to_nir(alif, (4,)), LoweringError, "layer 0.neuron", "ALIF", "adaptive")
    expect_clear_error(lambda: lower(alif, (4,)), LoweringError, "layer 0", "ALIF", "adaptive")
    delayed = nn.Sequential(nn.Linear(4, 3), Delay(1), LIF())
    expect_clear_error(lambda: lower(delayed, (4,)), LoweringError, "layer 1", "Delay", "delays")
    expect_clear_error(lambda: to_nir(nn.Sequential(Recurrent(4, 3)), (2, 4)), LoweringError, "layer 0",
                       "flat", "Flatten")


def test_nir_delay_that_is_not_whole_steps_is_named():
    graph = to_nir(nn.Sequential(Delay([1, 2])), (2,), dt=DT)
    graph.nodes["0"].delay = np.array([DT, 1.5 * DT])
    expect_clear_error(lambda: from_nir(graph, dt=DT), ValueError, "'0'", "Delay", "whole multiples")


# ------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delays, exc, names", [
    (-1, ValueError, ["delays", ">= 0", "-1"]),
    ([0, 1.5], ValueError, ["delays", "whole", "1.5"]),
    ([0, float("nan")], ValueError, ["delays", "whole"]),
    (True, TypeError, ["delays", "whole"]),
    ("3", TypeError, ["delays"]),
    ([], TypeError, ["delays", "non-empty"]),
])
def test_bad_delays_are_named(delays, exc, names):
    expect_clear_error(lambda: Delay(delays), exc, "Delay", *names)


def test_delays_load_from_a_state_dict():
    d = Delay([0, 1, 3], step_mode="m")
    d(torch.ones(2, 1, 3))
    d.load_state_dict(Delay([2, 2, 0]).state_dict())
    assert d.max_delay == 2 and d.ring == [None, None]
    x = torch.arange(1.0, 5.0).reshape(4, 1, 1).expand(4, 1, 3)
    assert torch.equal(d(x)[:, 0, 0], torch.tensor([0.0, 0, 1, 2]))
    bad = {"delays": torch.tensor([0, -1, 0])}
    expect_clear_error(lambda: d.load_state_dict(bad), ValueError, "Delay", "state dict", ">= 0")


def test_bad_shapes_and_arguments_are_named():
    expect_clear_error(lambda: Delay([1, 2, 3], step_mode="m")(torch.zeros(4, 2, 5)), ValueError, "Delay",
                       "[3]", "[5]", "broadcast")
    d = Delay(2, step_mode="s")
    d(torch.zeros(2, 3))
    expect_clear_error(lambda: d(torch.zeros(4, 3)), ValueError, "Delay", "reset")
    layer = Recurrent(4, 3, step_mode="m")
    expect_clear_error(lambda: layer(torch.zeros(5, 2, 6)), ValueError, "Recurrent", "[T, B, 4]", "(5, 2, 6)")
    expect_clear_error(lambda: layer(torch.zeros(0, 2, 4)), ValueError, "Recurrent", "T >= 1")
    layer(torch.zeros(5, 2, 4))
    expect_clear_error(lambda: layer(torch.zeros(5, 3, 4)), ValueError, "Recurrent", "reset")
    expect_clear_error(lambda: Recurrent(0, 3), ValueError, "in_features")
    expect_clear_error(lambda: Recurrent(LIF(), 3), TypeError, "in_features", "integer")
    expect_clear_error(lambda: Recurrent(2, 3, "nope"), KeyError, "nope", "lif")
    expect_clear_error(lambda: Recurrent(2, 3, 7), TypeError, "neuron", "registered")
    expect_clear_error(lambda: Recurrent(2, 3, LIF(), tau=3.0), TypeError, "neuron", "tau")
    expect_clear_error(lambda: Recurrent(2, 3, "lif", tau=0.5), ValueError, "tau")
    expect_clear_error(lambda: Recurrent.feedback(LIF(), 3, torch.zeros(3, 2)), ValueError, "weight", "[3, 3]")


# ------------------------------------------------------------------------------------------------------------
# Triton, under the interpreter in a subprocess
# ------------------------------------------------------------------------------------------------------------
def test_triton_backend_under_the_interpreter():
    from triton_interp import run_triton_main

    run_triton_main(__file__)


def _triton_main():
    layer = _dyadic_(Recurrent(6, 5, "lif", tau=2.0, backend="triton"), seed=2)
    x = _spikes(T=4, B=2)
    with torch.no_grad():
        m, s = _run(layer, x, "m"), _run(layer, x, "s")
    assert layer.neuron.last_backend == "triton"
    assert torch.equal(m, _hand_lif(layer, x)) and torch.equal(s, m)
    print("triton ok")


if __name__ == "__main__" and "--triton" in sys.argv:
    _triton_main()
