"""Torch emulation vs Lava's own simulator: fixed_pt spike-for-spike, floating_pt >= 99.9%.

Lava runs are slow (each builds OS processes), so networks are small and few steps.
"""
import warnings

import pytest
import torch
import torch.nn as nn

from snn.export.loihi import (FixedLayer, FixedNet, SumPool2d, emulate_fixed, emulate_float,
                              lower, quantize)
from snn.neuron import CUBALIF, IF, LIF
from snn.recurrent import Recurrent

pytest.importorskip("lava", reason="lava-nc not installed")
from snn.export.lava import run_lava  # noqa: E402


def _spikes(T, B, shape, p, g):
    return (torch.rand(T, B, *shape, generator=g) < p).float()


def _random_neuron(g):
    kind = int(torch.randint(3, (1,), generator=g))
    r = lambda lo, hi: float(lo + (hi - lo) * torch.rand(1, generator=g))  # noqa: E731
    if kind == 0:
        return CUBALIF(du=r(0.05, 1.0), dv=r(0.0, 0.5), v_threshold=r(0.5, 2.0), bias=r(-0.1, 0.2))
    if kind == 1:
        return LIF(tau=r(1.2, 8.0), v_threshold=r(0.5, 1.5), decay_input=bool(torch.rand(1, generator=g) < 0.5))
    return IF(v_threshold=r(0.5, 2.0), v_reset=r(-0.3, 0.0))


def _random_net(g, n_layers, recurrent=False):
    sizes = [int(torch.randint(6, 20, (1,), generator=g)) for _ in range(n_layers + 1)]
    mods = []
    for i in range(n_layers):
        neuron = _random_neuron(g)
        lin = nn.Linear(sizes[i], sizes[i + 1], bias=not isinstance(neuron, CUBALIF) or neuron.du == 1.0)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(sizes[i + 1], sizes[i], generator=g) * 1.5 / sizes[i] ** 0.5 * 2)
            if lin.bias is not None:
                lin.bias.copy_(torch.randn(sizes[i + 1], generator=g) * 0.1)
        mods.append(lin)
        if recurrent and i == 0:
            n = sizes[1]
            mods.append(Recurrent.feedback(neuron, n, torch.randn(n, n, generator=g) * 0.6 / n ** 0.5))
        else:
            mods.append(neuron)
    return nn.Sequential(*mods), sizes[0]


@pytest.mark.parametrize("seed,n_layers,recurrent", [(0, 2, False), (1, 3, False), (2, 2, True), (3, 3, True)])
def test_fixed_pt_spike_for_spike(seed, n_layers, recurrent):
    g = torch.Generator().manual_seed(seed)
    net, n_in = _random_net(g, n_layers, recurrent)
    fixed = quantize(lower(net, (n_in,)))
    x = _spikes(16, 3, (n_in,), 0.4, g)
    lava_out = run_lava(fixed, x, batch_size=3)
    emu = emulate_fixed(fixed, x, all_layers=True)
    assert emu[-1].shape == lava_out.shape == (16, 3, fixed.layers[-1].n_out)
    assert torch.equal(lava_out, emu[-1].float())
    assert sum(float(s.sum()) for s in emu) > 20, "network too quiet to test anything"


def _random_fixed_net(g, n_layers, n_in):
    """Integers across Loihi's full ranges: drives 24-bit wrap-around, voltage clipping, shifts both ways."""
    ri = lambda lo, hi, *shape: torch.randint(lo, hi + 1, shape or (1,), generator=g)  # noqa: E731
    layers, n = [], n_in
    for i in range(n_layers):
        m = int(ri(4, 12))
        rec = i == 1
        layers.append(FixedLayer(
            name=f"L{i}", weight=(2 * ri(-128, 127, m, n)).double(), weight_exp=int(ri(-4, 7)),
            bias_mant=ri(-4096, 4095, m), bias_exp=ri(0, 7, m), du=int(ri(0, 4095)), dv=int(ri(0, 4095)),
            vth=int(ri(0, 3000)), scale=1.0, rec_weight=(2 * ri(-128, 127, m, m)).double() if rec else None,
            rec_weight_exp=int(ri(-2, 6)), out_shape=(m,)))
        n = m
    return FixedNet(in_shape=(n_in,), layers=layers)


def test_fixed_pt_full_integer_ranges_and_graded_input():
    g = torch.Generator().manual_seed(7)
    net = _random_fixed_net(g, 3, 10)
    # first layer: all-excitatory maximal weights, exponent 7, slowest current decay -> u wraps around 24 bits
    L0 = net.layers[0]
    net.layers[0] = FixedLayer(name="wrap", weight=torch.full_like(L0.weight, 254.0), weight_exp=7,
                               bias_mant=L0.bias_mant, bias_exp=L0.bias_exp, du=0, dv=L0.dv, vth=100000, scale=1.0,
                               out_shape=L0.out_shape)
    assert 254 * 6 * 2 ** 7 * 2 ** 6 > 2 ** 23  # six coincident input spikes (of 10, p=0.7) overflow u
    x = _spikes(20, 2, (10,), 0.7, g)
    with pytest.warns(RuntimeWarning, match=r"layer wrap: the current u wrapped around 24 bits [1-9]"):
        emu = emulate_fixed(net, x)
    assert torch.equal(run_lava(net, x, batch_size=2), emu.float())
    graded = FixedNet(in_shape=(10,), layers=_random_fixed_net(g, 2, 10).layers, input_bits=8)
    xg = torch.rand(12, 2, 10, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # full-range random integers: wraps are expected
        emu = emulate_fixed(graded, xg)
    assert torch.equal(run_lava(graded, xg, batch_size=1), emu.float())


def test_conv_pool_flatten_network_fixed_pt():
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(1, 3, 3, padding=1)
    lin = nn.Linear(3 * 3 * 3, 5)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(3, 1, 3, 3, generator=g))
        lin.weight.copy_(torch.randn(5, 27, generator=g) * 0.8)
    net = nn.Sequential(conv, IF(v_threshold=1.0), SumPool2d(2), nn.AvgPool2d(1), nn.Flatten(), lin, LIF(tau=2.0))
    fixed = quantize(lower(net, (1, 6, 6)))
    x = _spikes(10, 2, (1, 6, 6), 0.5, g)
    emu = emulate_fixed(fixed, x, all_layers=True)
    assert emu[0].shape == (10, 2, 3, 6, 6) and float(emu[0].sum()) > 0
    assert torch.equal(run_lava(fixed, x, batch_size=2), emu[-1].float())


@pytest.mark.parametrize("seed,recurrent", [(12, False), (11, True)])
def test_floating_pt_agreement(seed, recurrent):
    g = torch.Generator().manual_seed(seed)
    net, n_in = _random_net(g, 3, recurrent)
    cuba = lower(net, (n_in,))
    x = _spikes(16, 3, (n_in,), 0.4, g)
    lava_out, emu = run_lava(cuba, x, batch_size=3), emulate_float(cuba, x).float()
    agree = float((lava_out == emu).float().mean())
    print(f"floating_pt agreement: {agree:.5f} ({int(emu.sum())} spikes)")
    assert emu.sum() > 30
    assert agree >= 0.999


def test_liquid_state_machine_fixed_pt():
    lsm_mod = pytest.importorskip("snn.lsm")
    lsm = lsm_mod.LiquidStateMachine(10, 30, seed=1, p_in=0.5)
    fixed = quantize(lower(lsm, (10,)))
    assert fixed.layers[0].rec_weight is not None
    x = _spikes(12, 2, (10,), 0.3, torch.Generator().manual_seed(2))
    emu = emulate_fixed(fixed, x)
    assert emu.sum() > 20 and torch.equal(run_lava(fixed, x, batch_size=2), emu.float())


@pytest.mark.parametrize("strict", [False, True])
def test_floating_pt_keeps_the_tie_case(strict):
    """Lava's own float LIF (fires on v > vth) run with lava_threshold gives the snn network's spikes exactly,
    potentials landing on thresholds included, for >= and > neurons."""
    from test_export_loihi import _run_snn, tie_input, tie_net

    net, x = tie_net(strict), tie_input(T=10, B=2)
    ref = _run_snn(net, x)
    assert torch.equal(run_lava(lower(net, (6,)), x, batch_size=2), ref)
    assert not torch.equal(_run_snn(tie_net(not strict), x), ref), "ties must occur, or this test proves nothing"
