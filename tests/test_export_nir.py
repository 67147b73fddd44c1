"""NIR: snn -> NIR -> file -> snn gives the same spikes; SpikingJelly's own NIR export loads and agrees."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import snn
from snn import layers
from snn.export.loihi import LoweringError, Recurrent, SumPool2d
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF

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
        Recurrent(CUBALIF(du=0.5, dv=0.25, v_threshold=1.0, bias=0.05, backend="torch"), 6,
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
