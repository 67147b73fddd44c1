"""Fused layers (snn.fused) against the unfused modules: LinearNeuron for every registered neuron family and
backend, both step modes, float32/float64, awkward sizes (spikes identical, gradients within rounding; the
input saved as bits); ConvBNNeuron (BatchNorm folded in eval mode, unchanged training); fuse() on the presets;
clear errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snn
from snn import layers, models
from snn.fused import ConvBNNeuron, LinearNeuron, fold_batchnorm, fuse
from snn.ops import available_backends
from snn.recurrent import neuron_class
from snn.sparse import kernels

from badinput import expect_clear_error
from dyadic_layers import dyadic_

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAMILIES = models.neuron_names()
BACKENDS = [b for b in ("torch", "cpp") if b in available_backends()]
TOL = {torch.float32: 2e-5, torch.float64: 1e-11}


@pytest.fixture(autouse=True)
def _fixed_crossover(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_SPARSE_CROSSOVER", "0.3")      # 'auto' without a calibration run
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))


def _pair(family, backend, K, N, step_mode, dtype, seed, **fused_kw):
    """A LinearNeuron and the unfused Linear -> neuron with the same parameters, weights drawn so that the
    neurons fire (currents of the spec's input scale)."""
    cls = neuron_class(family)
    fused = LinearNeuron(K, N, cls(backend=backend), step_mode=step_mode, **fused_kw).to(dtype)
    g = torch.Generator().manual_seed(seed)
    scale = 3.0 * cls.spec.input_scale / (0.3 * K) ** 0.5
    with torch.no_grad():
        fused.linear.weight.copy_(torch.randn(N, K, generator=g, dtype=dtype) * scale)
        fused.linear.bias.copy_(torch.randn(N, generator=g, dtype=dtype) * cls.spec.input_scale)
    lin, neu = layers.Linear(K, N, step_mode=step_mode).to(dtype), cls(backend=backend, step_mode=step_mode).to(dtype)
    lin.load_state_dict(fused.linear.state_dict())
    neu.load_state_dict(fused.neuron.state_dict())
    return fused, nn.Sequential(lin, neu)


def _run(net, x, step_mode):
    snn.reset(net)
    if step_mode == "m":
        return net(x)
    return torch.stack([net(x[t]) for t in range(x.shape[0])])


def _compare(fused, ref, x, step_mode, exact_grads=False):
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = _run(fused, xa, step_mode), _run(ref, xb, step_mode)
    assert torch.equal(sa, sb)
    g = torch.randn(sa.shape, dtype=sa.dtype, generator=torch.Generator().manual_seed(1))
    (sa * g).sum().backward()
    (sb * g).sum().backward()
    tol = TOL[x.dtype]
    pairs = [(xa.grad, xb.grad)] + [(p.grad, q.grad) for p, q in zip(fused.parameters(), ref.parameters())]
    for a, b in pairs:
        if exact_grads:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * (1 + float(b.abs().max())))
    return sa


@SETTINGS
@given(family=st.sampled_from(FAMILIES), backend=st.sampled_from(BACKENDS), step_mode=st.sampled_from("ms"),
       dtype=st.sampled_from([torch.float32, torch.float64]), T=st.integers(1, 5), B=st.integers(1, 3),
       K=st.sampled_from([1, 7, 9, 33, 70]), N=st.sampled_from([1, 5, 64, 67]), seed=st.integers(0, 50))
def test_linear_neuron_dense_is_the_unfused_layer(family, backend, step_mode, dtype, T, B, K, N, seed):
    fused, ref = _pair(family, backend, K, N, step_mode, dtype, seed, mode="dense", grad_mode="dense")
    x = (torch.rand(T, B, K, generator=torch.Generator().manual_seed(seed)) < 0.3).to(dtype)
    _compare(fused, ref, x, step_mode)
    assert fused.last_path == "dense" and fused.last_grad_path == "dense"


@pytest.mark.skipif(not kernels.available(), reason="the event-driven kernels are not built")
@SETTINGS
@given(family=st.sampled_from(FAMILIES), step_mode=st.sampled_from("ms"),
       dtype=st.sampled_from([torch.float32, torch.float64]), T=st.integers(1, 4), B=st.integers(1, 3),
       K=st.sampled_from([3, 8, 65, 300]), N=st.sampled_from([2, 64, 65]), seed=st.integers(0, 50))
def test_linear_neuron_event_paths(family, step_mode, dtype, T, B, K, N, seed):
    """Event forward and event weight gradient: with weights on a binary grid every sum is exact, so the spikes
    are the unfused layer's bit for bit; the gradients agree to rounding."""
    fused, ref = _pair(family, "cpp" if "cpp" in BACKENDS else "torch", K, N, step_mode, dtype, seed,
                       mode="event", grad_mode="event")
    with torch.no_grad():
        for p, q in ((fused.linear.weight, ref[0].weight), (fused.linear.bias, ref[0].bias)):
            p.copy_(torch.round(p * 16) / 16)
            q.copy_(p)
    x = (torch.rand(T, B, K, generator=torch.Generator().manual_seed(seed)) < 0.2).to(dtype)
    _compare(fused, ref, x, step_mode)
    assert fused.last_path == "event" and fused.last_grad_path == "event"


def test_linear_neuron_saves_the_input_spikes_as_bits():
    fused = LinearNeuron(96, 32, "lif", mode="dense", grad_mode="auto")
    x = (torch.rand(10, 4, 96) < 0.2).float().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t.dtype, tuple(t.shape))) or t, lambda t: t):
        fused(x).sum().backward()
    assert (torch.uint8, (40, 12)) in saved                    # 1 bit per input spike
    assert (torch.float32, (40, 96)) not in saved              # not the float input


def test_linear_neuron_in_a_network_trains_the_shared_parameters():
    torch.manual_seed(0)
    model = models.mlp(in_shape=(1, 4, 4), hidden=(12, 10), num_classes=3)
    fused = fuse(model)
    kinds = [type(m).__name__ for m in fused]
    assert kinds == ["Flatten", "LinearNeuron", "LinearNeuron", "Linear"]
    assert fused[1].linear is model[1] and fused[1].neuron is model[2]
    x = torch.rand(5, 2, 1, 4, 4)
    for train in (True, False):
        model.train(train)
        snn.reset(model)
        ref = model(x)
        snn.reset(fused)
        assert torch.equal(fused(x), ref)
    snn.reset(fused)
    fused.train()
    fused(x).sum().backward()
    assert model[1].weight.grad is not None and model[3].weight.grad is not None


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_conv_bn_neuron_folds_in_eval_and_is_unchanged_in_training(step_mode):
    torch.manual_seed(0)
    conv = layers.Conv2d(3, 6, 3, padding=1, bias=False, step_mode=step_mode)
    bn = layers.BatchNorm2d(6, step_mode=step_mode)
    neu = snn.neuron.LIF(step_mode=step_mode)
    dyadic_(nn.Sequential(conv, bn), 0)
    fused, ref = ConvBNNeuron(conv, bn, neu), nn.Sequential(conv, bn, neu)
    x = (torch.rand(4, 2, 3, 8, 8) < 0.4).float()
    for m in (fused, ref):
        m.eval()
    with torch.no_grad():                                      # inference: the folded convolution
        sa, sb = _run(fused, x, step_mode), _run(ref, x, step_mode)
    assert torch.equal(sa, sb) and sa.sum() > 0 and fused._fold_key is not None
    xg = x.clone().requires_grad_()                            # eval with gradients: the modules themselves
    _run(fused, xg, step_mode).sum().backward()
    assert conv.weight.grad is not None and bn.weight.grad is not None and xg.grad is not None
    w, b = fold_batchnorm(conv, bn)
    assert fused.folded()[0] is fused.folded()[0]             # cached
    with torch.no_grad():
        conv.weight.mul_(2)
    assert not torch.equal(fused.folded()[0], w)              # a changed weight is folded again
    # training: the modules' own forward (batch statistics, running averages updated alike)
    states = []
    bn.eps = 1e-5
    for m in (fused, ref):
        m.train()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.num_batches_tracked.zero_()
        out = _run(m, x, step_mode)
        states.append((out, bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)))
    assert torch.equal(states[0][0], states[1][0]) and torch.equal(states[0][1], states[1][1])
    assert torch.equal(states[0][2], states[1][2]) and states[0][3] == states[1][3]


def test_fuse_on_csnn_folds_both_conv_blocks():
    torch.manual_seed(0)
    model = models.csnn(in_shape=(1, 8, 8), channels=(4, 6))
    fused = fuse(model)
    assert sum(isinstance(m, ConvBNNeuron) for m in fused) == 2
    x = torch.rand(3, 2, 1, 8, 8)
    model.train()
    snn.reset(model)
    ref = model(x)
    snn.reset(fused)
    assert torch.equal(fused(x), ref)
    model.eval()
    with torch.no_grad():
        snn.reset(model)
        ref = model(x)
        snn.reset(fused)
        torch.testing.assert_close(fused(x), ref, rtol=1e-4, atol=1e-4)   # folded: equal to rounding


def test_bad_input_names_the_layer():
    lay = LinearNeuron(20, 30, "lif")
    expect_clear_error(lambda: lay(torch.ones(2, 3, 21)), ValueError, "LinearNeuron(20 -> 30", "21 features", "20")
    expect_clear_error(lambda: lay(torch.ones(3, 20)), ValueError, "LinearNeuron(20 -> 30", "step_mode='m'",
                       "3-D")
    expect_clear_error(lambda: lay(torch.ones(2, 3, 20, dtype=torch.int64)), TypeError, "LinearNeuron", "floating")
    expect_clear_error(lambda: LinearNeuron(20, 30, "lif", mode="sparse"), ValueError, "LinearNeuron(20 -> 30",
                       "mode")
    expect_clear_error(lambda: LinearNeuron(20, 30, 42), TypeError, "LinearNeuron(20 -> 30", "neuron")
    expect_clear_error(lambda: LinearNeuron(0, 30), ValueError, "in_features")
    half = LinearNeuron(4, 3, "lif", mode="event").half()
    if kernels.available():
        expect_clear_error(lambda: half(torch.ones(2, 1, 4, dtype=torch.float16)), RuntimeError, "LinearNeuron(4 -> 3",
                           "mode='event'", "float32/float64")
    conv = layers.Conv2d(2, 3, 3, step_mode="m")
    expect_clear_error(lambda: ConvBNNeuron(conv, nn.BatchNorm2d(3, track_running_stats=False), snn.neuron.LIF()),
                       ValueError, "ConvBNNeuron", "track_running_stats")
    expect_clear_error(lambda: ConvBNNeuron(models.ScaledWSConv2d(2, 3, 3), nn.BatchNorm2d(3), snn.neuron.LIF()),
                       TypeError, "ConvBNNeuron", "ScaledWSConv2d")
    expect_clear_error(lambda: ConvBNNeuron(conv, nn.BatchNorm2d(4), snn.neuron.LIF()), ValueError, "ConvBNNeuron",
                       "4 features", "3 output channels")
