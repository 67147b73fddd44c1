"""Neuron dynamics against sequences computed by hand from the equations in DESIGN.md."""
import pytest
import torch

import snn
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF


def run(neuron, xs):
    neuron.step_mode = "m"
    neuron.store_v_seq = True
    x = torch.tensor(xs, dtype=torch.float64).view(-1, 1)
    s = neuron(x)
    return s.view(-1).tolist(), neuron.v_seq.view(-1).tolist()


def test_lif_hard_reset_decay_input():
    # H = V + (X - V)/2: 0.75, 0.625, 1.0625 -> fire, reset to 0; 0; 1.25 -> fire.
    s, v = run(LIF(tau=2.0), [1.5, 0.5, 1.5, 0.0, 2.5])
    assert s == [0, 0, 1, 0, 1]
    assert v == pytest.approx([0.75, 0.625, 0.0, 0.0, 0.0])


def test_lif_decay_input_false_with_nonzero_reset():
    # H = V - (V - Vr)/2 + X with Vr = -0.5, V0 = -0.5: -0.5+0+0.8=0.3; 0.3-0.4+0.8=0.7; 0.7-0.6+0.8=0.9...
    s, v = run(LIF(tau=2.0, v_reset=-0.5, decay_input=False), [0.8, 0.8, 0.8, 1.5])
    # Step 4: 0.9 - 0.7 + 1.5 = 1.7 -> fire, reset to -0.5.
    assert s == [0, 0, 0, 1]
    assert v == pytest.approx([0.3, 0.7, 0.9, -0.5])


def test_lif_soft_reset_subtracts_threshold():
    # tau=4, decay_input: H = V + (X - V)/4. X=4: H=1 -> fire, V=0; X=8: H=2 -> fire, V=1; X=0: H=0.75.
    s, v = run(LIF(tau=4.0, v_reset=None), [4.0, 8.0, 0.0])
    assert s == [1, 1, 0]
    assert v == pytest.approx([0.0, 1.0, 0.75])


@pytest.mark.parametrize("v_reset,expected_v", [(0.0, [0.6, 0.0, 0.6]), (None, [0.6, 0.2, 0.8])])
def test_if_hard_and_soft(v_reset, expected_v):
    s, v = run(IF(v_reset=v_reset), [0.6, 0.6, 0.6])
    assert s == [0, 1, 0]
    assert v == pytest.approx(expected_v)


def test_plif_starts_at_init_tau():
    n = PLIF(init_tau=2.0)
    assert n.current_tau == pytest.approx(2.0)
    s, v = run(n, [1.5, 0.5, 1.5, 0.0, 2.5])
    assert s == [0, 0, 1, 0, 1]  # the same as LIF(tau=2)


def test_alif_threshold_adapts():
    # tau=1 makes H = X. Threshold 1 + 0.5·A with A[t] = 0.5·A[t-1] + S[t-1]: 1, 1.5, 1.25, 1.125.
    s, _ = run(ALIF(tau=1.0, rho=0.5, beta=0.5), [1.2, 1.2, 1.2, 1.2])
    assert s == [1, 0, 0, 1]


def test_cubalif_fires_strictly_above_threshold():
    # U: 1, 1.5; V: 1 (== threshold: no spike), 0.5 + 1.5 = 2 -> spike, V = 0.
    s, v = run(CUBALIF(du=0.5, dv=0.5, v_threshold=1.0), [1.0, 1.0])
    assert s == [0, 1]
    assert v == pytest.approx([1.0, 0.0])


def test_cubalif_bias_drives_firing_without_input():
    s, _ = run(CUBALIF(du=1.0, dv=0.0, v_threshold=1.0, bias=0.4), [0.0] * 6)
    # V grows by 0.4 a step: 0.4, 0.8, 1.2 -> fire; 0.4, 0.8, 1.2 -> fire.
    assert s == [0, 0, 1, 0, 0, 1]


def test_detach_reset_changes_only_the_gradient():
    x = torch.rand(6, 3, 4, dtype=torch.float64) * 2
    grads, outs = [], []
    for detach in (False, True):
        xi = x.clone().requires_grad_()
        s = LIF(detach_reset=detach, step_mode="m")(xi)
        s.sum().backward()
        outs.append(s.detach())
        grads.append(xi.grad)
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_reset_clears_state():
    n = LIF(step_mode="m")
    x = torch.rand(4, 2, 3) * 3
    first = n(x)
    assert n.v is not None
    snn.reset(torch.nn.Sequential(n))
    assert n.v is None
    assert torch.equal(n(x), first)
