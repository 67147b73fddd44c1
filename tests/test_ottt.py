"""OTTT: per-step weight gradients are error × presynaptic trace; memory independent of T; no BatchNorm."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from snn import layers, models, neuron
from snn.functional import reset, set_step_mode
from snn.train import PeakMemory
from snn.train import ottt
from snn.train.methods import BPTT, OTTT


def small_net(dtype=torch.float64):
    torch.manual_seed(1)
    net = nn.Sequential(layers.Linear(5, 7), neuron.LIF(tau=2.0, surrogate="sigmoid", detach_reset=True),
                        layers.Linear(7, 3))
    with torch.no_grad():
        net[0].weight.mul_(4.0)  # make the hidden layer fire
    return net.to(dtype)


def test_per_step_gradient_is_error_times_trace():
    net = small_net()
    lin1, lif, lin2 = net
    T, B, tau, lam = 5, 4, 2.0, 0.5
    x = torch.rand(T, B, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (B,))
    set_step_mode(net, "s")
    reset(net)
    # reference state, by hand
    v = torch.zeros(B, 7, dtype=torch.float64)
    a0 = torch.zeros(B, 5, dtype=torch.float64)
    a1 = torch.zeros(B, 7, dtype=torch.float64)
    fired = 0
    with ottt.OnlineTraces(net, lam) as tracer:
        for t in range(T):
            net.zero_grad()
            ottt.ottt_step(net, x[t], y, T, denom=B)
            # the instantaneous loss at step t, with the traces as layer inputs
            with torch.no_grad():
                h = v + (x[t] @ lin1.weight.T + lin1.bias - v) / tau
                s = (h >= 1.0).double()
                v = h * (1 - s)
                fired += int(s.sum())
                a0 = lam * a0 + x[t]
                a1 = lam * a1 + s
                o = s @ lin2.weight.T + lin2.bias
                delta2 = (F.softmax(o, 1) - F.one_hot(y, 3).double()) / (B * T)
                delta1 = (delta2 @ lin2.weight) * lif.surrogate.derivative(h - 1.0) / tau
            assert torch.allclose(tracer.traces[lin1], a0) and torch.allclose(tracer.traces[lin2], a1)
            assert torch.allclose(lin2.weight.grad, delta2.T @ a1, atol=1e-12)
            assert torch.allclose(lin2.bias.grad, delta2.sum(0), atol=1e-12)
            assert torch.allclose(lin1.weight.grad, delta1.T @ a0, atol=1e-12)
            # the same via autograd: gradient of L[t] with the trace as input, forward value unchanged
            w2 = lin2.weight.detach().clone().requires_grad_()
            o_ref = a1 @ w2.T + lin2.bias.detach() + ((s - a1) @ w2.T).detach()
            (F.cross_entropy(o_ref, y, reduction="sum") / (B * T)).backward()
            assert torch.allclose(lin2.weight.grad, w2.grad, atol=1e-12)
    assert fired > 0


def test_ottt_a_sums_the_step_gradients_and_forward_matches_bptt():
    net = small_net()
    T, B = 4, 3
    x, y = torch.rand(T, B, 5, dtype=torch.float64), torch.tensor([0, 1, 2])
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append([p.grad.clone() for p in net.parameters()])
            return super().step(closure)

    opt = Spy(net.parameters(), lr=0.0)
    loss, logits = OTTT(0.5, "A").train_batch(net, x, y, opt, denom=B)
    assert len(seen) == 1  # one update per batch
    with torch.no_grad():
        reset(net)
        ref = net(x).mean(0)  # the multi-step network computes the same outputs
    assert torch.allclose(logits, ref)
    seen.clear()
    OTTT(0.5, "O").train_batch(net, x, y, opt, denom=B)
    assert len(seen) == T  # an update every step


def _peak(method, net, T, B=8):
    torch.manual_seed(0)
    x = torch.rand(T, B, 1, 8, 8)
    y = torch.randint(0, 10, (B,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    meter = PeakMemory("cpu")
    with meter:
        method.train_batch(net, x, y, opt, denom=B)
    return meter.peak_bytes


def test_ottt_memory_does_not_grow_with_T():
    net = models.csnn(in_shape=(1, 8, 8), channels=(8, 16), norm="ws")
    m4, m32 = _peak(OTTT(0.5), net, 4), _peak(OTTT(0.5), net, 32)
    assert abs(m32 - m4) <= 0.10 * m4, (m4, m32)
    b4, b32 = _peak(BPTT(), net, 4), _peak(BPTT(), net, 32)
    assert b32 > 4 * b4, (b4, b32)  # BPTT keeps every step's graph
    assert m32 < b32 / 4


def test_ottt_rejects_batchnorm_and_bad_decay():
    with pytest.raises(ValueError, match="BatchNorm"):
        ottt.check_online(models.csnn(in_shape=(1, 8, 8), channels=(4, 8), norm="bn"))
    with pytest.raises(ValueError, match="λ"):
        ottt.OnlineTraces(nn.Linear(2, 2), 1.5)
    assert ottt.trace_decay("if", 2.0) == 1.0 and ottt.trace_decay("lif", 4.0) == 0.75


def test_ottt_conv_ws_gets_trace_gradients():
    net = models.csnn(in_shape=(1, 8, 8), channels=(4, 8), norm="ws")
    x, y = torch.rand(3, 2, 1, 8, 8), torch.tensor([1, 2])
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    OTTT(0.5).train_batch(net, x, y, opt, denom=2)
    assert all(p.grad is None for p in net.parameters())  # zeroed after the update
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "_step_mode"))  # restored
