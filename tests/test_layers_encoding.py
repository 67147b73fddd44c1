import pytest
import torch
import torch.nn as nn

import snn
from snn import encoding as enc
from snn import layers as L
from snn.neuron import LIF


def test_folded_layers_equal_per_step_application():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 2, 8, 8)
    conv = L.Conv2d(2, 5, 3, padding=1, step_mode="m")
    y = conv(x)
    ref = torch.stack([nn.Conv2d.forward(conv, xt) for xt in x])
    torch.testing.assert_close(y, ref)
    assert isinstance(conv, nn.Conv2d)


def test_batchnorm_statistics_cover_all_time_steps():
    x = torch.randn(5, 4, 3, 6, 6) * 2 + 1
    bn = L.BatchNorm2d(3, step_mode="m")
    y = bn(x)
    assert y.shape == x.shape
    # Normalised over T·B·H·W: per-channel mean ~0 and var ~1.
    assert y.transpose(0, 2).reshape(3, -1).mean(1).abs().max() < 1e-5


def test_sequential_network_in_both_modes():
    torch.manual_seed(0)
    net = nn.Sequential(L.Flatten(), L.Linear(16, 10), LIF(), L.Linear(10, 3), LIF())
    x = torch.rand(6, 2, 1, 4, 4) * 3
    snn.functional.set_step_mode(net, "m")
    out_m = net(x)
    snn.reset(net)
    snn.functional.set_step_mode(net, "s")
    out_s = torch.stack([net(xt) for xt in x])
    assert torch.equal(out_m, out_s)


def test_seq_to_ann_wraps_any_stateless_stack():
    seq = L.SeqToANN(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert seq(torch.rand(3, 2, 1, 5, 5)).shape == (3, 2, 2, 3, 3)


def test_dropout_mask_is_shared_across_time_and_redrawn_after_reset():
    torch.manual_seed(0)
    d = L.Dropout(0.5, step_mode="m")
    y = d(torch.ones(6, 4, 10))
    assert all(torch.equal(y[0], y[t]) for t in range(6))
    first = y[0].clone()
    snn.reset(d)
    assert not torch.equal(d(torch.ones(6, 4, 10))[0], first)
    d.eval()
    assert torch.equal(d(torch.ones(2, 4, 10)), torch.ones(2, 4, 10))
    with pytest.raises(ValueError, match="p must lie"):
        L.Dropout(1.0)


def test_bad_step_mode_on_layer():
    with pytest.raises(ValueError, match="step_mode"):
        L.Linear(2, 2, step_mode="t")


def test_direct_and_poisson():
    x = torch.rand(2, 3)
    assert torch.equal(enc.direct(x, 4)[3], x)
    g = torch.Generator().manual_seed(0)
    s = enc.poisson(torch.full((20000,), 0.3), 5, generator=g)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert abs(s.mean().item() - 0.3) < 0.01
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.poisson(torch.tensor([1.5]), 3)
    with pytest.raises(ValueError, match="positive integer"):
        enc.direct(x, 0)


def test_latency_one_spike_brighter_earlier():
    x = torch.tensor([0.0, 0.2, 0.6, 1.0])
    s = enc.latency(x, 10)
    assert s.sum(0).tolist() == [0.0, 1.0, 1.0, 1.0]
    first = s.argmax(0)
    assert first[3] < first[2] < first[1]
    s_log = enc.latency(x, 10, method="log", tau=3.0)
    assert s_log.sum(0).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_delta_on_and_off():
    x = torch.tensor([0.0, 0.5, 0.55, 0.1, 0.1])
    assert enc.delta(x, 0.3).tolist() == [0.0, 1.0, 0.0, -1.0, 0.0]
    assert enc.delta(x, 0.3, off_spikes=False).tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert enc.delta(torch.tensor([0.5]), 0.3, first_from_zero=True).tolist() == [1.0]
