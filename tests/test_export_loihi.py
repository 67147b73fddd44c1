"""Lowering, quantizer, fixed-point emulation and QAT (no Lava needed except where marked)."""
import math

import pytest
import torch
import torch.nn as nn
from dyadic import dyadic_weights_

import snn
from snn.export.loihi import (RANGES, LoihiRangeError, LoweringError, QATNet, emulate_fixed, emulate_float, lower,
                              quantize, wrap24)
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF
from snn.recurrent import Recurrent


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _net(g, neurons, sizes, scale=3.0):
    mods = []
    for i, neuron in enumerate(neurons):
        lin = nn.Linear(sizes[i], sizes[i + 1], bias=not isinstance(neuron, CUBALIF))
        with torch.no_grad():
            lin.weight.copy_(torch.randn(sizes[i + 1], sizes[i], generator=g) * scale / sizes[i] ** 0.5)
            if lin.bias is not None:
                lin.bias.copy_(torch.randn(sizes[i + 1], generator=g) * 0.1)
        mods += [lin, neuron]
    return nn.Sequential(*mods)


def _run_snn(net, x):
    snn.functional.set_step_mode(net, "m")
    snn.reset(net)
    with torch.no_grad():
        return net(x)


def _neurons():
    kw = dict(backend="torch")
    return [LIF(tau=2.5, v_threshold=1.0, **kw), IF(v_threshold=0.8, v_reset=-0.2, **kw), PLIF(init_tau=3.0, **kw),
            LIF(tau=4.0, decay_input=False, v_threshold=1.2, **kw),
            CUBALIF(du=0.4, dv=0.2, v_threshold=1.0, bias=0.05, **kw)]


def test_lowering_reproduces_snn_dynamics():
    """The CUBA form of IF / LIF / PLIF / CUBALIF gives the snn network's own spikes (float rounding aside)."""
    g = torch.Generator().manual_seed(0)
    neurons = _neurons()
    net = _net(g, neurons, [12, 20, 18, 16, 14, 10])
    x = (torch.rand(30, 4, 12, generator=g) < 0.5).float()
    ref, got = _run_snn(net, x), emulate_float(lower(net, (12,)), x).float()
    assert ref.sum() > 50
    assert float((ref == got).float().mean()) >= 0.999


def test_recurrent_layer_matches_its_module():
    g = torch.Generator().manual_seed(1)
    n = 16
    rec = Recurrent.feedback(LIF(tau=2.0, backend="torch"), n, torch.randn(n, n, generator=g) * 0.5)
    net = nn.Sequential(nn.Linear(10, n), rec)
    with torch.no_grad():
        net[0].weight.mul_(3)
    x = (torch.rand(25, 3, 10, generator=g) < 0.5).float()
    ref = net(x)
    got = emulate_float(lower(net, (10,)), x).float()
    assert ref.sum() > 20 and float((ref == got).float().mean()) >= 0.999


def test_fixed_point_close_to_float():
    g = torch.Generator().manual_seed(2)
    net = _net(g, _neurons()[:3], [40, 60, 50, 30])
    cuba = lower(net, (40,))
    fixed = quantize(cuba)
    for L in fixed.layers:
        assert L.vth >= 512 and RANGES["weight_exp"][0] <= L.weight_exp <= RANGES["weight_exp"][1]
        assert L.weight.abs().max() <= 256 and bool((L.weight % 2 == 0).all())
    x = (torch.rand(30, 8, 40, generator=g) < 0.4).float()
    a, b = emulate_float(cuba, x), emulate_fixed(fixed, x)
    assert float((a == b).float().mean()) > 0.97


def test_emulation_integer_primitives():
    x = torch.tensor([2.0 ** 23, 2.0 ** 23 + 5, -(2.0 ** 23), -(2.0 ** 23) - 3, 7.0])
    # Lava: > 2^23 wraps down, <= -2^23 wraps up; exactly 2^23 stays
    assert wrap24(x).tolist() == [2.0 ** 23, -(2.0 ** 23) + 5, 2.0 ** 23, 2.0 ** 23 - 3, 7.0]
    from snn.export.loihi import floor_shift, trunc_div
    assert trunc_div(torch.tensor([-4097.0, 4097.0, -1.0]), 4096).tolist() == [-1.0, 1.0, 0.0]
    assert floor_shift(torch.tensor([-3.0, 3.0]), -1).tolist() == [-2.0, 1.0]
    assert floor_shift(torch.tensor([-3.0]), 2).tolist() == [-12.0]


def test_unsupported_layer_is_named_with_supported_list():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), LIF(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3), LIF())
    with pytest.raises(LoweringError, match=r"MaxPool2d.*supported layers: Linear, .*CUBALIF"):
        lower(net, (1, 6, 6))
    with pytest.raises(LoweringError, match="adaptive"):
        lower(nn.Sequential(nn.Linear(3, 3), ALIF()), (3,))
    with pytest.raises(LoweringError, match="soft reset"):
        lower(nn.Sequential(nn.Linear(3, 3), LIF(v_reset=None)), (3,))
    with pytest.raises(LoweringError, match="bias"):
        lower(nn.Sequential(nn.Linear(3, 3), CUBALIF(du=0.5)), (3,))


def test_out_of_range_is_reported_or_clipped_with_count():
    net = nn.Sequential(nn.Linear(4, 3, bias=False), CUBALIF(du=0.0, dv=0.1))
    with pytest.raises(LoihiRangeError, match=r"1: du .* = -1 is outside Loihi's range \[0, 4095\]"):
        quantize(lower(net, (4,)))
    fixed = quantize(lower(net, (4,)), clip=True)
    assert fixed.layers[0].du == 0 and fixed.report["n_clipped"] == 1
    big_bias = nn.Sequential(nn.Linear(4, 3, bias=False), CUBALIF(du=1.0, dv=0.1, v_threshold=1.0, bias=1e4))
    with pytest.raises(LoihiRangeError, match=r"bias \(integer units\)"):
        quantize(lower(big_bias, (4,)))
    assert quantize(lower(big_bias, (4,)), clip=True).report["n_clipped"] == 3


def test_bias_uses_exponent_when_needed():
    net = nn.Sequential(nn.Linear(4, 2, bias=False), CUBALIF(du=1.0, dv=0.1, v_threshold=1.0, bias=0.9))
    with torch.no_grad():
        net[0].weight.fill_(0.01)   # tiny weights -> large scale -> bias needs an exponent
    L = quantize(lower(net, (4,))).layers[0]
    eff = float(L.bias_mant[0]) * 2 ** int(L.bias_exp[0])
    assert int(L.bias_exp[0]) > 0 and math.isclose(eff, 0.9 * L.scale, rel_tol=2e-3)


def test_qat_forward_is_the_deployed_network_and_learns():
    g = torch.Generator().manual_seed(4)
    net = _net(g, [LIF(tau=2.0), IF(v_threshold=1.0)], [20, 30, 5])
    qat = QATNet(lower(net, (20,)))
    x = (torch.rand(12, 16, 20, generator=g) < 0.4).float()
    y = torch.randint(5, (16,), generator=g)
    with torch.no_grad():
        assert torch.equal(qat(x), emulate_fixed(qat.to_fixed(), x))
    opt = torch.optim.Adam(qat.parameters(), lr=0.02)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(qat(x).sum(0), y)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in qat.parameters())
        opt.step()
        losses.append(float(loss.detach()))
    assert min(losses[-3:]) < losses[0]
    with torch.no_grad():
        assert torch.equal(qat(x), emulate_fixed(qat.to_fixed(), x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_emulation_on_gpu_is_bit_identical():
    g = torch.Generator().manual_seed(5)
    net = _net(g, [LIF(tau=2.0), CUBALIF(du=0.3, dv=0.1)], [50, 40, 10])
    fixed = quantize(lower(net, (50,)))
    x = (torch.rand(20, 64, 50, generator=g) < 0.3).float()
    assert torch.equal(emulate_fixed(fixed, x), emulate_fixed(fixed, x.cuda()).cpu())


def test_liquid_state_machine_lowers_exactly():
    lsm_mod = pytest.importorskip("snn.lsm")
    lsm = lsm_mod.LiquidStateMachine(12, 40, seed=0, p_in=0.5)
    x = (torch.rand(30, 3, 12, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    ref = lsm(x)
    got = emulate_float(lower(lsm, (12,)), x).float()
    assert ref.sum() > 100 and float((ref == got).float().mean()) >= 0.999


def test_recurrent_module_state_and_step_modes():
    g = torch.Generator().manual_seed(6)
    rec = Recurrent.feedback(LIF(tau=2.0, backend="torch"), 8, torch.randn(8, 8, generator=g))
    x = torch.rand(10, 2, 8, generator=g) * 2
    whole = rec(x)
    snn.reset(rec)
    halves = torch.cat([rec(x[:5]), rec(x[5:])])
    snn.reset(rec)
    rec.step_mode = "s"
    steps = torch.stack([rec(xt) for xt in x])
    assert torch.equal(whole, halves) and torch.equal(whole, steps)


# ------------------------------------------------------------------------------------------------------------
# Threshold comparison: >= (IF/LIF/PLIF default) and > (strict_threshold=True, CUBALIF) survive the lowering
# ------------------------------------------------------------------------------------------------------------
def tie_net(strict: bool, seed: int = 0):
    """IF, LIF and CUBALIF layers with dyadic weights (multiples of 1/4), thresholds and decays (1/2): every
    potential is exact in float32 and float64, and many land exactly on their threshold."""
    kw = dict(backend="torch", strict_threshold=strict)
    net = nn.Sequential(nn.Linear(6, 8, bias=False), IF(v_threshold=1.0, v_reset=-0.25, **kw),
                        nn.Linear(8, 7), LIF(tau=2.0, v_threshold=0.5, **kw),
                        nn.Linear(7, 5, bias=False), LIF(tau=2.0, v_threshold=0.75, decay_input=False, **kw),
                        nn.Linear(5, 4, bias=False), CUBALIF(du=1.0, dv=0.5, v_threshold=0.5, bias=0.25))
    return dyadic_weights_(net, seed)


def tie_input(seed: int = 1, T: int = 12, B: int = 3):
    return (torch.rand(T, B, 6, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


@pytest.mark.parametrize("strict", [False, True])
def test_float_lowering_keeps_the_tie_case(strict):
    """The float CUBA form (Lava's ``floating_pt`` arithmetic, threshold from ``lava_threshold``) gives exactly the
    snn network's spikes, with potentials landing on the threshold, for >= and > neurons alike."""
    from snn.export.loihi.lowering import lava_threshold

    net, x = tie_net(strict), tie_input()
    ref = _run_snn(net, x)
    cuba = lower(net, (6,))
    assert [L.strict for L in cuba.layers] == [strict, strict, strict, True]
    assert all(lava_threshold(L) < L.vth for L in cuba.layers if not L.strict)
    got = emulate_float(cuba, x, all_layers=True)
    ref_layers, h = [], x
    snn.reset(net)
    with torch.no_grad():
        for m in net:
            h = m(h)
            if not isinstance(m, nn.Linear):
                ref_layers.append(h)
    for a, b in zip(ref_layers, got):
        assert torch.equal(a.double(), b)
    assert ref.sum() > 20
    assert not torch.equal(_run_snn(tie_net(not strict), x), ref), "ties must occur, or this test proves nothing"


@pytest.mark.parametrize("strict", [False, True])
def test_quantizer_puts_the_threshold_on_an_integer_potential(strict):
    """s·V_th = 64·vth + δ exactly (δ = 1 for >=, 0 for >): Lava's ``v > (vth << 6)`` is then the layer's own
    comparison with its scaled threshold, on integer potentials; weights stay within 8 bits."""
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        neurons = [IF(v_threshold=0.3 + float(torch.rand(1, generator=g)), strict_threshold=strict),
                   LIF(tau=3.0, v_threshold=1.7, v_reset=-0.2, strict_threshold=strict),
                   CUBALIF(du=1.0, dv=0.3, v_threshold=0.9)]
        cuba = lower(_net(g, neurons, [9, 12, 10, 8], scale=float(1 + 5 * torch.rand(1, generator=g))), (9,))
        fixed = quantize(cuba)
        for L, F in zip(cuba.layers, fixed.layers):
            delta = 0 if L.strict else 1
            assert math.isclose(F.scale * L.vth, 64 * F.vth + delta, rel_tol=1e-12)
            assert F.vth >= 512 and F.weight.abs().max() <= 256
            assert L.strict == (strict or isinstance(neurons[cuba.layers.index(L)], CUBALIF))


def test_fixed_point_emulation_warns_when_lava_arithmetic_overflows():
    """1024 coincident input spikes, each worth half the threshold: one step's input is 512 thresholds, beyond
    Lava's 24-bit current at the quantizer's scale, so it wraps around (Lava's arithmetic: the spikes are not the
    float network's); the emulation says so, naming the layer. A quiet input gives no warning."""
    import warnings

    net = nn.Sequential(nn.Linear(1024, 2, bias=False), IF(v_threshold=1.0))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    fixed = quantize(lower(net, (1024,)))
    with pytest.warns(RuntimeWarning, match=r"layer 1: the current u wrapped around 24 bits 6 time"):
        emulate_fixed(fixed, torch.ones(3, 1, 1024))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        emulate_fixed(fixed, (torch.rand(3, 1, 1024, generator=torch.Generator().manual_seed(0)) < 0.01).float())
