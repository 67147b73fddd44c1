"""Registry-driven export: the exporters dispatch on the exact class of every layer.

A subclass of a neuron or layer snn exports (here a LIF whose input is scaled by a gain) is refused, naming the
layer, instead of being written as its base class; registering a mapping for it exports it faithfully (checked
against the NIR reference simulator and the Loihi float emulation); the new neuron families are refused until
they declare a mapping.
"""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error

import snn
from snn.export import registry
from snn.export.loihi import CubaParams, LoweringError, emulate_float, lower
from snn.neuron import LIF

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir, nir_threshold, to_nir  # noqa: E402
from test_nir_reference import nir_reference  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
DT = 2.0 ** -10             # dyadic: every value below is exact in float32 and float64


class GainLIF(LIF):
    """A LIF whose input is scaled by ``gain``: ``H = V + (gain·X - (V - V_reset))/tau``."""

    def __init__(self, gain: float = 2.0, **kw):
        super().__init__(**kw)
        self.gain = gain

    def forward(self, x):
        return super().forward(self.gain * x)


class DoubledLinear(nn.Linear):
    """A Linear whose output is doubled: not what ``nn.Linear``'s weights say."""

    def forward(self, x):
        return 2 * super().forward(x)


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by the test are dropped afterwards."""
    monkeypatch.setattr(registry.NIR, "user", {})
    monkeypatch.setattr(registry.LOIHI, "user", {})
    monkeypatch.setitem(registry.NIR_IMPORT, "user", {})


def _dyadic_net(neuron, n_in=6, n_out=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(n_in, n_out, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randint(-1, 4, (n_out, n_in), generator=g) / 4)
    return nn.Sequential(nn.Sequential(lin, neuron))


def _spikes(seed=0, T=16, B=3, n=6):
    return (torch.rand(T, B, n, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def _run(net, x):
    snn.functional.set_step_mode(net, "m")
    snn.reset(net)
    with torch.no_grad():
        return net(x)


def _gain_lif(**kw):
    return GainLIF(gain=2.0, tau=2.0, v_threshold=1.0, v_reset=0.0, backend="torch", **kw)


# ------------------------------------------------------------------------------------------------------------
# Unregistered classes are refused, naming the layer
# ------------------------------------------------------------------------------------------------------------
EXPORTERS = {"nir": lambda net, shape: to_nir(net, shape, dt=DT), "loihi": lower}
HINT = {"nir": "register_nir", "loihi": "register_loihi"}


@pytest.mark.parametrize("target", EXPORTERS)
def test_subclass_of_lif_with_other_dynamics_is_refused_naming_the_layer(target):
    net = _dyadic_net(_gain_lif())
    err = expect_clear_error(lambda: EXPORTERS[target](net, (6,)), LoweringError, "layer 0.1", "GainLIF",
                             "subclasses LIF", HINT[target])
    assert "test_export_registry.GainLIF" in str(err)


@pytest.mark.parametrize("target", EXPORTERS)
def test_subclass_of_linear_with_other_output_is_refused_naming_the_layer(target):
    net = nn.Sequential(DoubledLinear(4, 3), snn.neuron.IF())
    expect_clear_error(lambda: EXPORTERS[target](net, (4,)), LoweringError, "layer 0", "DoubledLinear",
                       "subclasses Linear")


@pytest.mark.parametrize("target", EXPORTERS)
def test_refused_class_gives_its_reason(target, clean_registry):
    registry.refuse_export(GainLIF, "the gain has no counterpart here", target)
    expect_clear_error(lambda: EXPORTERS[target](_dyadic_net(_gain_lif()), (6,)), LoweringError, "layer 0.1",
                       "GainLIF", "the gain has no counterpart here")


NEW_FAMILIES = ("QIF", "EIF", "Izhikevich")


def _family(name):
    for module in ("snn.neuron", "snn.neurons"):
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            return cls
    pytest.skip(f"{name} is not a neuron module of snn.neuron yet")


@pytest.mark.parametrize("target", EXPORTERS)
@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_new_neuron_families_are_refused_naming_the_layer(name, target):
    net = nn.Sequential(nn.Linear(4, 3), _family(name)())
    expect_clear_error(lambda: EXPORTERS[target](net, (4,)), LoweringError, "layer 1", name)


# ------------------------------------------------------------------------------------------------------------
# A registered mapping exports the user's class
# ------------------------------------------------------------------------------------------------------------
def _gain_lif_to_nir(m, ctx):
    """NIR's LIF reads ``v += dt/tau·(v_leak - v + r·I)``: the gain is ``r``."""
    return nir.LIF(tau=ctx.full(m.tau * ctx.dt, np.float64), r=ctx.full(m.gain, np.float64), v_leak=ctx.full(m.v_reset),
                   v_threshold=ctx.full(nir_threshold(m.v_threshold, m.strict_threshold)),
                   v_reset=ctx.full(m.v_reset))


def _gain_lif_to_cuba(m, name):
    """Lava's LIF with du = 1, dv = 1/tau and the input scaled by gain/tau."""
    return CubaParams(du=1.0, dv=1.0 / m.tau, vth=m.v_threshold - m.v_reset, weight_scale=m.gain / m.tau,
                      strict=m.strict_threshold)


def test_registered_nir_mapping_exports_the_users_neuron(clean_registry):
    snn.export.register_nir(GainLIF, _gain_lif_to_nir)
    net, x = _dyadic_net(_gain_lif()), _spikes()
    graph = to_nir(net, (6,), dt=DT)
    assert np.all(graph.nodes["0.1"].r == 2.0)
    ref, _, _, exact = nir_reference(graph, x.numpy(), DT)
    got = _run(net, x)
    assert exact and got.sum() > 10
    assert np.array_equal(got.numpy(), ref)
    plain = to_nir(_dyadic_net(LIF(tau=2.0, backend="torch")), (6,), dt=DT)
    assert np.all(plain.nodes["0.1"].r == 1.0)


def test_registered_loihi_mapping_lowers_the_users_neuron(clean_registry):
    snn.export.register_loihi(GainLIF, _gain_lif_to_cuba)
    net, x = _dyadic_net(_gain_lif(), seed=1), _spikes(seed=1)
    got, ref = emulate_float(lower(net, (6,)), x).float(), _run(net, x)
    assert ref.sum() > 10
    assert torch.equal(got, ref)


def test_registered_import_reads_the_node_back_as_the_users_class(clean_registry):
    def from_nir_node(node, ctx):
        p = ctx.scalar
        return GainLIF(gain=p("r"), tau=p("tau") / ctx.dt, v_threshold=p("v_threshold"), v_reset=p("v_reset"),
                       **ctx.neuron_kw)

    snn.export.register_nir(GainLIF, _gain_lif_to_nir, node="LIF", from_nir=from_nir_node)
    net, x = _dyadic_net(_gain_lif(strict_threshold=True), seed=2), _spikes(seed=2)
    back = from_nir(to_nir(net, (6,), dt=DT))
    assert type(back[1]) is GainLIF and back[1].gain == 2.0
    assert torch.equal(_run(back, x), _run(net, x))


def test_a_registered_subclass_leaves_its_base_class_alone(clean_registry):
    snn.export.register_loihi(GainLIF, _gain_lif_to_cuba)
    net = _dyadic_net(LIF(tau=2.0))
    layer = lower(net, (6,)).layers[0]
    assert layer.dv == 0.5 and torch.equal(layer.weight, net[0][0].weight.double() * 0.5)


def test_a_mapping_in_the_neuron_spec_is_used(clean_registry, monkeypatch):
    """A spec bound to the class carries its mappings in ``exports`` (a function or a 'module:function' name)."""
    neurons = pytest.importorskip("snn.neurons")
    from snn.neurons import registry as specs

    monkeypatch.setattr(specs, "_SPECS", dict(specs._SPECS))
    monkeypatch.setattr(specs, "_CLASSES", dict(specs._CLASSES))
    spec = dataclasses.replace(neurons.get("lif"), name="gain_lif",
                               exports={"nir": f"{__name__}:_gain_lif_to_nir", "loihi": _gain_lif_to_cuba})
    neurons.bind(GainLIF, spec)
    net, x = _dyadic_net(_gain_lif(), seed=3), _spikes(seed=3)
    assert np.all(to_nir(net, (6,), dt=DT).nodes["0.1"].r == 2.0)
    assert torch.equal(emulate_float(lower(net, (6,)), x).float(), _run(net, x))
    refused = dataclasses.replace(spec, name="gain_lif_refused", exports={"nir": {"refuse": "no gain in NIR"}})
    neurons.bind(GainLIF, refused)
    expect_clear_error(lambda: to_nir(net, (6,)), LoweringError, "layer 0.1", "no gain in NIR")


def test_scaled_ws_conv_is_written_with_the_weight_it_computes_with():
    """ScaledWSConv2d standardises its weight in the forward: NIR gets that weight, not the raw one."""
    from snn.models import ScaledWSConv2d

    torch.manual_seed(0)
    net = nn.Sequential(ScaledWSConv2d(1, 2, 3, padding=1, gain_init=3.0, step_mode="m"),
                        snn.neuron.IF(v_threshold=0.5, backend="torch"))
    x = (torch.rand(8, 2, 1, 5, 5) < 0.5).float()
    back = from_nir(to_nir(net, (1, 5, 5)), backend="torch")
    ref = _run(net, x)
    assert ref.sum() > 10
    assert torch.equal(_run(back, x), ref)


# ------------------------------------------------------------------------------------------------------------
# Bad registrations
# ------------------------------------------------------------------------------------------------------------
BAD_REGISTRATIONS = {
    "not a class": (lambda: snn.export.register_nir(GainLIF(), _gain_lif_to_nir), TypeError, "must be a class"),
    "not callable": (lambda: snn.export.register_nir(GainLIF, "to_nir"), TypeError, "callable", "GainLIF"),
    "unknown kind": (lambda: snn.export.register_nir(GainLIF, _gain_lif_to_nir, kind="synapse"), ValueError,
                     "kind", "synapse"),
    "node without from_nir": (lambda: snn.export.register_nir(GainLIF, _gain_lif_to_nir, node="LIF"), ValueError,
                              "from_nir", "GainLIF"),
    "loihi not callable": (lambda: snn.export.register_loihi(GainLIF, 3), TypeError, "callable", "GainLIF"),
    "unknown target": (lambda: snn.export.refuse_export(GainLIF, "why", "lava-dl"), ValueError, "targets",
                       "lava-dl"),
    "no reason": (lambda: snn.export.refuse_export(GainLIF, ""), ValueError, "reason"),
}


@pytest.mark.parametrize("case", BAD_REGISTRATIONS)
def test_bad_registration_is_a_clear_error(case, clean_registry):
    fn, exc, *names = BAD_REGISTRATIONS[case]
    expect_clear_error(fn, exc, *names)
    assert not registry.NIR.user and not registry.LOIHI.user and not registry.NIR_IMPORT["user"]


def test_registering_a_class_twice_needs_replace(clean_registry):
    snn.export.register_loihi(GainLIF, _gain_lif_to_cuba)
    expect_clear_error(lambda: snn.export.register_loihi(GainLIF, _gain_lif_to_cuba), ValueError, "GainLIF",
                       "replace=True")
    snn.export.register_loihi(GainLIF, _gain_lif_to_cuba, replace=True)


def test_a_mapping_that_returns_the_wrong_type_is_named(clean_registry):
    snn.export.register_loihi(GainLIF, lambda m, name: (1.0, 0.5, 1.0))
    expect_clear_error(lambda: lower(_dyadic_net(_gain_lif()), (6,)), TypeError, "layer 0.1", "GainLIF",
                       "CubaParams")


def test_a_nir_node_of_a_foreign_subclass_is_not_read_as_its_base():
    class MyLIF(nir.LIF):
        pass

    f = np.ones(3, np.float32)
    node = MyLIF(tau=f * 2e-4, r=f, v_leak=0 * f, v_reset=0 * f, v_threshold=f)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "odd": node,
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "odd"), ("odd", "output")], type_check=False)
    expect_clear_error(lambda: from_nir(graph), ValueError, "'odd'", "MyLIF", "no snn counterpart")
