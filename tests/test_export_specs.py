"""Export driven by the neuron specs: every family says how it maps to NIR and to Loihi, or that it does not; the
exporters take the mapping from the spec bound to the exact class, never from a base class."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error

import snn
from snn import neurons
from snn.export import registry
from snn.export.loihi import LoweringError, lower
from snn.neuron import BaseNeuron, LIF
from snn.neurons import registry as specs
from snn.recurrent import Recurrent, neuron_class

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir, importable_nodes, supported_layers, to_nir  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TARGETS = ("nir", "loihi")
EXPORTERS = {"nir": lambda net, shape: to_nir(net, shape), "loihi": lower}


@pytest.fixture
def private_specs(monkeypatch):
    """Specs and bindings made by the test are dropped afterwards."""
    monkeypatch.setattr(specs, "_SPECS", dict(specs._SPECS))
    monkeypatch.setattr(specs, "_CLASSES", dict(specs._CLASSES))


# snn's own families (other test modules register user specs, which declare no exports on purpose).
BUILT_IN = [n for n in neurons.names() if neuron_class(n).__module__.startswith("snn.")]


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("target", TARGETS)
def test_every_family_says_how_it_exports_or_why_not(name, target):
    """Each of snn's families exports through its spec: a function, or a refusal naming the layer."""
    cls = neuron_class(name)
    mapping = registry.NIR.find(cls) if target == "nir" else registry.LOIHI.find(cls)
    assert mapping is not None, f"neuron spec {name!r} has no {target!r} entry in its exports"
    assert mapping == registry._spec_mapping(cls, target)
    net = nn.Sequential(nn.Linear(3, 4), cls())
    if mapping.refused is None:
        assert callable(mapping.fn)
        return
    expect_clear_error(lambda: EXPORTERS[target](net, (3,)), LoweringError, "layer 1", cls.__name__,
                       mapping.refused)


def test_the_exporters_built_in_tables_hold_no_neuron():
    """snn's own neurons map only through their specs: nothing in the exporters knows a neuron class."""
    for table in (registry.NIR.builtin, registry.LOIHI.builtin):
        assert not [c.__name__ for c in table if issubclass(c, BaseNeuron)]
    assert not {"IF", "LIF", "CubaLIF"} & set(registry.NIR_IMPORT["builtin"])
    assert {"IF", "LIF", "CubaLIF", "Delay", "Affine", "Conv2d"} <= set(importable_nodes())
    assert {"IF", "LIF", "PLIF", "CUBALIF", "Recurrent", "Delay", "Linear"} <= set(supported_layers())
    assert not {"ALIF", "QIF", "EIF", "Izhikevich"} & set(supported_layers())


def _fast_spec(**exports):
    base = neurons.get("lif")
    kernel = lambda v: {**base.to_kernel(v), "decay": min(1.0, 2.0 / v["tau"])}  # noqa: E731
    return dataclasses.replace(base, name="fast_lif", to_kernel=kernel, exports=exports)


def _fast_lif(**exports) -> type:
    """A user's LIF with twice the decay, ``H = V + (X - (V - V_r))·2/tau``: its own spec (bound while the
    ``private_specs`` fixture holds), other dynamics."""
    class FastLIF(LIF):
        spec = _fast_spec(**exports)

    return FastLIF


def test_a_users_subclass_with_other_dynamics_is_refused_naming_layer_neuron_and_spec(private_specs):
    FastLIF = _fast_lif()
    x = (torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    net = nn.Sequential(nn.Linear(3, 4), FastLIF(tau=4.0, step_mode="m"))
    nn.init.constant_(net[0].weight, 1.0)
    with torch.no_grad():
        assert not torch.equal(net(x), nn.Sequential(net[0], LIF(tau=4.0, step_mode="m"))(x)), "other dynamics"
    for target in TARGETS:
        expect_clear_error(lambda: EXPORTERS[target](net, (3,)), LoweringError, "layer 1", "FastLIF",
                           "'fast_lif'", f"no '{target}' entry")
    rec = nn.Sequential(Recurrent(3, 4, FastLIF()))
    expect_clear_error(lambda: to_nir(rec, (3,)), LoweringError, "layer 0.neuron", "FastLIF", "'fast_lif'")
    expect_clear_error(lambda: lower(rec, (3,)), LoweringError, "layer 0", "FastLIF", "'fast_lif'")


def test_a_subclass_without_a_spec_is_never_its_base_class():
    class Unbound(LIF):
        pass

    for target in TARGETS:
        expect_clear_error(lambda: EXPORTERS[target](nn.Sequential(nn.Linear(3, 4), Unbound()), (3,)),
                           LoweringError, "layer 1", "Unbound", "subclasses LIF")


def test_a_spec_entry_with_its_node_reads_the_node_back_as_that_class(private_specs):
    """``{"to", "node", "from"}``: the spec reads its node back as the user's class (registry mechanics; the LI node
    is a stand-in)."""
    def to_nir_fn(m, ctx):
        return nir.LI(tau=ctx.full(m.tau * ctx.dt), r=ctx.full(1.0), v_leak=ctx.full(0.0))

    def from_nir_fn(node, ctx):
        return FastLIF(tau=ctx.scalar("tau") / ctx.dt, **ctx.neuron_kw)

    FastLIF = _fast_lif(nir={"to": to_nir_fn, "node": "LI", "from": from_nir_fn})
    graph = to_nir(nn.Sequential(nn.Linear(3, 4), FastLIF(tau=4.0)), (3,))
    assert type(graph.nodes["1"]).__name__ == "LI" and "LI" in importable_nodes()
    back = from_nir(graph)
    assert type(back[1]) is FastLIF and back[1].tau == pytest.approx(4.0)


@pytest.mark.parametrize("exports, names", [
    ({"nir": 3}, ["fast_lif", "exports['nir']", "function"]),
    ({"nir": "no_colon"}, ["fast_lif", "exports['nir']", "'no_colon'"]),
    ({"nir": "snn.nowhere:fn"}, ["fast_lif", "cannot be imported"]),
    ({"nir": {"to": "snn.export.neurons:lif_to_nir", "node": "LIF"}}, ["fast_lif", "'node'", "'from'"]),
    ({"loihi": {"to": "snn.export.neurons:lif_to_cuba", "node": "LIF"}}, ["fast_lif", "exports['loihi']"]),
    ({"nir": {"refuse": "why", "to": "snn.export.neurons:lif_to_nir"}}, ["fast_lif", "refuse"]),
])
def test_a_malformed_exports_entry_names_the_spec(exports, names, private_specs):
    target = next(iter(exports))
    net = nn.Sequential(nn.Linear(3, 4), _fast_lif(**exports)())
    expect_clear_error(lambda: EXPORTERS[target](net, (3,)), TypeError, *names)


def test_two_specs_reading_the_same_node_is_named(private_specs):
    neurons.register(_fast_spec(nir={"to": "snn.export.neurons:lif_to_nir", "node": "LIF",
                                     "from": "snn.export.neurons:lif_from_nir"}))
    graph = to_nir(nn.Sequential(nn.Linear(3, 4), snn.neuron.LIF()), (3,))
    expect_clear_error(lambda: from_nir(graph), ValueError, "'LIF'", "fast_lif", "'lif'")
