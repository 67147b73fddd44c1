"""NIR: snn -> NIR -> file -> snn gives the same spikes; SpikingJelly's own NIR export loads and agrees."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from dyadic import dyadic_weights_

import snn
from snn import layers
from snn.export.loihi import LoweringError, SumPool2d
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF
from snn.recurrent import Recurrent

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir, to_nir  # noqa: E402


def _run(net, x):
    snn.functional.set_step_mode(net, "m")
    snn.reset(net)
    with torch.no_grad():
        return net(x)


def _conv_net(g):
    kw = dict(step_mode="m", backend="torch")
    net = nn.Sequential(
        layers.Conv2d(1, 4, 3, padding=1, step_mode="m"), IF(v_threshold=0.8, v_reset=-0.1, **kw),
        SumPool2d(2), layers.Conv2d(4, 4, 3, padding=1, bias=False, step_mode="m"), PLIF(init_tau=3.0, **kw),
        layers.AvgPool2d(3, step_mode="m"), layers.Flatten(step_mode="m"), layers.Linear(4, 12, step_mode="m"),
        LIF(tau=2.0, decay_input=False, **kw), layers.Linear(12, 6, bias=False, step_mode="m"),
        Recurrent.feedback(CUBALIF(du=0.5, dv=0.25, v_threshold=1.0, bias=0.05, backend="torch"), 6,
                  torch.randn(6, 6, generator=g) * 0.3))
    _excite(net, g)
    return net


def _excite(net, g, gain=2.0):
    """Weights ~ (N(0,1) + 0.5)·gain/sqrt(fan_in): every layer keeps firing, so the comparisons mean something."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_((torch.randn(m.weight.shape, generator=g) + 0.5) * gain / fan_in ** 0.5)


def test_round_trip_through_a_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = _conv_net(g)
    graph = to_nir(net, (1, 6, 6))
    assert {"input", "output", "10", "10.rec"} <= set(graph.nodes)
    path = tmp_path / "net.nir"
    nir.write(str(path), graph)
    back = from_nir(str(path), backend="torch")
    x = (torch.rand(12, 3, 1, 6, 6, generator=g) < 0.5).float()
    ref, got = _run(net, x), _run(back, x)
    assert ref.sum() > 20
    assert torch.equal(ref, got)
    kinds = [type(m).__name__ for m in back]
    assert kinds[:3] == ["Conv2d", "IF", "SumPool2d"] and kinds[-1] == "Recurrent" and kinds[4] == "LIF"


def test_unsupported_layers_are_named():
    with pytest.raises(LoweringError, match=r"MaxPool2d.*supported"):
        to_nir(nn.Sequential(nn.MaxPool2d(2)), (1, 4, 4))
    with pytest.raises(LoweringError, match="soft reset"):
        to_nir(nn.Sequential(nn.Linear(2, 2), LIF(v_reset=None)), (2,))
    with pytest.raises(LoweringError, match="ALIF"):
        to_nir(nn.Sequential(nn.Linear(2, 2), ALIF()), (2,))


def test_per_neuron_parameters_are_rejected():
    graph = to_nir(nn.Sequential(nn.Linear(3, 2), LIF(tau=2.0)), (3,))
    graph.nodes["1"].v_threshold = np.array([1.0, 2.0], dtype=np.float32)
    with pytest.raises(ValueError, match="per-neuron"):
        from_nir(graph, backend="torch")


def test_spikingjelly_export_loads_with_same_spikes():
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(1)
    net = nn.Sequential(layer.Conv2d(1, 3, 3, padding=1), neuron.IFNode(v_threshold=0.7), layer.AvgPool2d(2),
                        layer.Flatten(), layer.Linear(27, 10), neuron.LIFNode(tau=2.5, decay_input=False),
                        layer.Linear(10, 5, bias=False), neuron.ParametricLIFNode(init_tau=3.0))
    _excite(net, torch.Generator().manual_seed(1))
    functional.set_step_mode(net, "m")
    x = (torch.rand(16, 4, 1, 6, 6) < 0.6).float()
    graph = sj.export_to_nir(net, x)
    functional.reset_net(net)
    with torch.no_grad():
        ref = net(x)
    got = _run(from_nir(graph, backend="torch"), x)
    assert ref.sum() > 20
    assert torch.equal(ref, got)


# ------------------------------------------------------------------------------------------------------------
# Threshold semantics: snn's >= is exported faithfully, imports fire on >
# ------------------------------------------------------------------------------------------------------------
def test_nir_threshold_is_the_float32_neighbour_below():
    """For every float32 v near V_th: v > nir_threshold(V_th, strict=False) ⟺ v >= float32(V_th)."""
    from snn.export.nir import nir_threshold

    rng = np.random.default_rng(0)
    ths = [0.0, 1.0, 0.7, -0.3, 1e-40, 3.4e38, *rng.normal(0, 10, 200)]
    for th in ths:
        t32 = np.float32(th)
        around = [t32]
        for direction in (np.inf, -np.inf):
            v = t32
            for _ in range(4):
                v = np.nextafter(v, np.float32(direction))
                around.append(v)
        v = np.array(around, np.float32)
        assert np.array_equal(v > nir_threshold(th, strict=False), v >= t32), th
        assert np.array_equal(v > nir_threshold(th, strict=True), v > t32), th


def _tie_net(strict: bool):
    """IF and LIF layers whose potentials land exactly on the threshold (dyadic weights, V_th = 1, decay 1/2)."""
    kw = dict(step_mode="m", backend="torch", strict_threshold=strict)
    net = nn.Sequential(nn.Linear(4, 6, bias=False), IF(v_threshold=1.0, v_reset=0.0, **kw),
                        nn.Linear(6, 5), LIF(tau=2.0, v_threshold=0.5, v_reset=-0.25, **kw),
                        nn.Linear(5, 3, bias=False), LIF(tau=2.0, v_threshold=0.75, decay_input=False, **kw))
    return dyadic_weights_(net, 3)


def _ties_matter(net, x) -> bool:
    """Whether making every IF/LIF of ``net`` fire on > instead of >= changes its spikes (potentials land exactly
    on thresholds), i.e. whether a test on ``x`` can tell the two comparisons apart."""
    strict = copy.deepcopy(net)
    for m in strict.modules():
        if isinstance(m, LIF):
            m.strict_threshold = True
    return not torch.equal(_run(strict, x), _run(net, x))


@pytest.mark.parametrize("strict", [False, True])
def test_export_keeps_the_tie_case_both_ways(strict, tmp_path):
    """Potentials landing exactly on V_th: the exported file, read by NIR's rules (the float64 reference) and by
    from_nir, gives the snn model's spikes, for >= (default) and > (strict_threshold=True) neurons alike."""
    from test_nir_reference import nir_reference

    from snn.export.nir import write_nir

    net = _tie_net(strict)
    x = (torch.rand(16, 4, 4, generator=torch.Generator().manual_seed(4)) < 0.6).float()
    ref = _run(net, x)
    dt = 2.0 ** -10
    graph = to_nir(net, (4,), dt=dt)
    write_nir(graph, tmp_path / "ties.nir")
    nir_spikes = nir_reference(nir.read(str(tmp_path / "ties.nir")), x.double().numpy(), dt)[0]
    back = _run(from_nir(tmp_path / "ties.nir", backend="torch"), x)
    assert ref.sum() > 20
    np.testing.assert_array_equal(nir_spikes, ref.double().numpy())
    assert torch.equal(back, ref)
    assert not torch.equal(_run(_tie_net(not strict), x), ref), "ties must occur, or this test proves nothing"


def test_import_fires_strictly_above_the_threshold():
    """An IF node fed exactly v_threshold does not fire (NIR: v > v_threshold); a hair more does."""
    dt = 0.5
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "if": nir.IF(r=np.full(2, 2.0, np.float32), v_threshold=np.full(2, 1.0, np.float32),
                                             v_reset=np.zeros(2, np.float32)),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "if"), ("if", "output")], type_check=False)
    net = from_nir(graph, dt=dt, backend="torch")
    assert net[0].strict_threshold
    x = torch.tensor([[[1.0, float(np.nextafter(np.float32(1), np.float32(2)))]]])
    assert _run(net, x).tolist() == [[[0.0, 1.0]]]


def test_random_parameters_round_trip_bit_for_bit():
    """Time constants and CUBALIF biases: to_nir writes values from which from_nir recomputes snn's float32 decay
    and bias exactly (for any tau, du, dv, bias and dt), so the round trip cannot move a spike."""
    rng = np.random.default_rng(1)
    for i in range(60):
        dt = float(rng.choice([1e-4, 1e-3, 2.0 ** -10, 0.37]))
        tau, du, dv, bias = rng.uniform(1, 40), rng.uniform(1e-3, 1), rng.uniform(1e-3, 1), rng.normal(0, 1)
        net = nn.Sequential(nn.Linear(3, 3), LIF(tau=tau), nn.Linear(3, 3, bias=False),
                            CUBALIF(du=du, dv=dv, bias=bias), nn.Linear(3, 3), PLIF(init_tau=1 + tau))
        back = from_nir(to_nir(net, (3,), dt=dt), backend="torch")
        f32 = np.float32
        assert f32(back[1].decay()) == f32(net[1].decay()), (i, dt, tau)
        assert f32(1 - back[3].du) == f32(1 - du) and f32(1 - back[3].dv) == f32(1 - dv), (i, dt, du, dv)
        assert f32(back[3].bias) == f32(bias), (i, dt, bias)
        assert f32(back[5].decay()) == f32(float(net[5].decay())), (i, dt)


# ------------------------------------------------------------------------------------------------------------
# Round trips through Norse and snnTorch (their own NIR importers/exporters)
# ------------------------------------------------------------------------------------------------------------
def _dyadic(net, seed, low=-1):
    """Weights and biases in multiples of 1/4 (weights from ``low``/4 to 3/4): every sum is exact in float32."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randint(low, 4, m.weight.shape, generator=g) / 4)
                if m.bias is not None:
                    m.bias.copy_(torch.randint(-1, 2, m.bias.shape, generator=g) / 4)
            if isinstance(m, Recurrent):
                m.recurrent_weight.copy_(torch.randint(-2, 3, m.recurrent_weight.shape, generator=g) / 4)
    return net


def _run_stateful(module, x):
    """Run a nirtorch-built module step by step, carrying its state."""
    state, out = None, []
    with torch.no_grad():
        for xt in x:
            o, state = module(xt, state)
            out.append(o)
    return torch.stack(out)


def test_norse_runs_the_exported_network_with_the_same_spikes():
    """snn -> NIR -> Norse: IF/LIF (>=, with exact ties) and a recurrent CUBALIF. The recurrent connection has no
    bias here: Norse (through nirtorch) starts a recurrent edge at 0 where NIR's Affine gives W·S[-1] + b = b, so
    it omits the recurrent bias at t = 0 (snn follows snnTorch's RSynaptic, which trained the braille model and
    adds it from t = 0: see test_snntorch_export_loads_with_the_same_spikes)."""
    norse = pytest.importorskip("norse.torch")
    kw = dict(step_mode="m", backend="torch")
    net = _dyadic(nn.Sequential(nn.Linear(4, 8, bias=False), LIF(tau=2.0, v_threshold=0.75, **kw),
                                nn.Linear(8, 6), IF(v_threshold=1.0, **kw), nn.Linear(6, 5, bias=False),
                                Recurrent.feedback(CUBALIF(du=0.5, dv=0.5, v_threshold=0.5, backend="torch"), 5)),
                  seed=7)
    dt = 2.0 ** -10
    x = (torch.rand(20, 3, 4, generator=torch.Generator().manual_seed(8)) < 0.5).float()
    ref = _run(net, x)
    got = _run_stateful(norse.from_nir(to_nir(net, (4,), dt=dt), dt=dt, ignore_warnings=True), x)
    assert ref.sum() > 20 and _ties_matter(net, x)
    assert torch.equal(got, ref)


def test_norse_export_loads_with_the_same_spikes():
    """Norse -> NIR -> snn (Norse's LIFBoxCell / IAFCell fire on v > v_th). Norse 1.1 writes a time constant as
    ``dt / tau_mem_inv``, which is ``tau`` only for ``dt = 1``, so the test uses ``dt = 1``."""
    norse = pytest.importorskip("norse.torch")
    from norse.torch.module.iaf import IAFCell, IAFParameters
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    dt = 1.0
    lin1, lin2 = nn.Linear(4, 6), nn.Linear(6, 3, bias=False)
    _dyadic(nn.Sequential(lin1, lin2), seed=9, low=0)
    cells = [LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(0.5), v_th=torch.tensor(0.5)), dt=dt),
             IAFCell(IAFParameters(v_th=torch.tensor(0.75)), dt=dt)]
    seq = norse.SequentialState(lin1, cells[0], lin2, cells[1])
    x = (torch.rand(16, 2, 4, generator=torch.Generator().manual_seed(10)) < 0.6).float()
    ref = _run_stateful(seq, x)
    graph = norse.to_nir(seq, x[0], dt=dt)
    got = _run(from_nir(graph, dt=dt, backend="torch"), x)
    assert ref.sum() > 10
    assert torch.equal(got, ref)


def test_snntorch_runs_the_exported_network_with_the_same_spikes():
    """snn -> NIR -> snnTorch (dt = 1e-4, its fixed step): LIF both input forms and CUBALIF, with ties.
    snnTorch 1.0's importer sends a recurrent layer's input through the recurrent weights (nirtorch subgraph
    wiring), so recurrent layers are checked against the reference and Norse only."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    kw = dict(step_mode="m", backend="torch")
    net = _dyadic(nn.Sequential(nn.Linear(4, 8), LIF(tau=2.0, v_threshold=0.75, decay_input=False, **kw),
                                nn.Linear(8, 6, bias=False), LIF(tau=2.0, v_threshold=0.5, **kw),
                                nn.Linear(6, 5, bias=False), CUBALIF(du=0.5, dv=0.5, v_threshold=0.5, **kw)), seed=11)
    x = (torch.rand(20, 3, 4, generator=torch.Generator().manual_seed(12)) < 0.5).float()
    ref = _run(net, x)
    module = import_from_nir(to_nir(net, (4,), dt=1e-4))
    for m in module.modules():
        if hasattr(m, "reset_mem"):
            m.reset_mem()
    got = _run_stateful(module, x)
    assert ref.sum() > 20 and _ties_matter(net, x)
    assert torch.equal(got, ref)


def _snntorch_layers(seed):
    """snnTorch's Leaky and Synaptic with per-neuron parameter tensors (its exporter takes the layer size from
    them) and ``reset_delay=False`` (NIR's neurons reset within the step), between dyadic Linear layers."""
    snntorch = pytest.importorskip("snntorch")
    lin1, lin2 = nn.Linear(4, 6), nn.Linear(6, 5, bias=False)
    _dyadic(nn.Sequential(lin1, lin2), seed=seed, low=0)
    full = lambda n, v: torch.full((n,), v)  # noqa: E731
    kw = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True)
    leaky = snntorch.Leaky(beta=full(6, 0.5), threshold=full(6, 0.75), **kw)
    syn = snntorch.Synaptic(alpha=full(5, 0.5), beta=full(5, 0.5), threshold=full(5, 0.5), **kw)
    return [lin1, leaky, lin2, syn]


def test_snntorch_export_loads_with_the_same_spikes():
    """snnTorch -> NIR -> snn: Leaky and Synaptic give snnTorch's own spikes."""
    pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    mods = _snntorch_layers(13)
    seq = nn.Sequential(*mods)
    x = (torch.rand(16, 2, 4, generator=torch.Generator().manual_seed(15)) < 0.6).float()
    for m in (mods[1], mods[3]):
        m.reset_hidden()
    with torch.no_grad():
        ref = torch.stack([seq(xt) for xt in x])
    graph = export_to_nir(seq, x[0], ignore_dims=[0])
    got = _run(from_nir(graph, dt=1e-4, backend="torch"), x)
    assert ref.sum() > 10
    assert torch.equal(got, ref)


def test_snntorch_recurrent_export_loads_as_the_reference_reads_it():
    """snnTorch's RSynaptic (recurrent weights with a bias) exports as ``<name>.lif`` in a cycle with
    ``<name>.w_rec`` (an Affine), the braille model's form; snn imports it with the spikes of the reference
    reading of that graph. (snnTorch 1.0 cannot run RSynaptic with ``reset_delay=False``:
    its forward reads an unset local; so the layer keeps the default, which the graph does not record, and the
    comparison is with the reference.) snnTorch writes float32 time constants for its fixed dt = 1e-4, so the
    decays are not dyadic: random weights, and no potential within 1e-4 of a threshold."""
    snntorch = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir
    from test_nir_reference import nir_reference

    rsyn = snntorch.RSynaptic(alpha=0.5, beta=0.5, threshold=0.5, linear_features=5, all_to_all=True,
                              reset_mechanism="zero", init_hidden=True)
    with torch.no_grad():
        rsyn.recurrent.weight.copy_(torch.randint(-2, 3, (5, 5), generator=torch.Generator().manual_seed(14)) / 4)
        rsyn.recurrent.bias.fill_(0.25)
    mods = _snntorch_layers(16)
    seq = nn.Sequential(*mods[:3], rsyn)
    _excite(seq, torch.Generator().manual_seed(18), gain=1.5)
    x = (torch.rand(16, 2, 4, generator=torch.Generator().manual_seed(17)) < 0.6).float()
    graph = export_to_nir(seq, x[0], ignore_dims=[0])
    assert np.all(graph.nodes["3.w_rec"].bias == 0.25) and ("3.w_rec", "3.lif") in graph.edges
    ref, margin = nir_reference(graph, x.double().numpy(), 1e-4)[:2]
    assert margin > 1e-4
    got = _run(from_nir(graph, dt=1e-4, backend="torch"), x)
    assert ref.sum() > 10
    np.testing.assert_array_equal(got.double().numpy(), ref)
