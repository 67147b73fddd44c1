"""Resistive-memory device model: its statistics match its parameters; bad parameters are clear errors."""
import math

import pytest
import torch

from snn.lsm import ResistiveMemory, make_device_model


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


N = 200_000


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_stochastic_switching_distribution():
    dm = ResistiveMemory(switch_mean=20.0, switch_std=3.0, g_min=1.0, g_max=40.0)
    g = dm.switching_conductances((N,), _gen())
    assert abs(float(g.mean()) - 20.0) < 0.05 and abs(float(g.std()) - 3.0) < 0.05
    assert float(g.min()) >= 1.0 and float(g.max()) <= 40.0
    arr = dm.random_weights((N,), w_max=1.0, generator=_gen(1))
    w = arr.weights()
    assert abs(float(w.mean())) < 0.005  # differential pairs: zero-mean random weights


def test_levels_and_programming_noise():
    ideal = ResistiveMemory(n_levels=5, program_noise=0.0, p_stuck_on=0.0, p_stuck_off=0.0, g_min=0.0, g_max=40.0)
    arr = ideal.program(torch.tensor([0.0, 0.1, 0.26, 0.5, 1.0, -0.74]), w_max=1.0, generator=_gen())
    assert torch.allclose(arr.weights(), torch.tensor([0.0, 0.0, 0.25, 0.5, 1.0, -0.75]), atol=1e-6)
    noisy = ResistiveMemory(n_levels=None, program_noise=0.02, p_stuck_on=0.0, p_stuck_off=0.0, g_min=1.0, g_max=41.0)
    arr = noisy.program(torch.full((N,), 0.5), w_max=1.0, generator=_gen())
    err = arr.g_pos - (1.0 + 20.0)  # target G+ = g_min + 0.5 * range
    assert abs(float(err.mean())) < 0.01 and abs(float(err.std()) - 0.02 * 40.0) < 0.01


def test_stuck_at_fault_rates():
    dm = ResistiveMemory(n_levels=None, program_noise=0.0, p_stuck_on=0.01, p_stuck_off=0.03, g_min=1.0, g_max=40.0)
    arr = dm.program(torch.full((N,), 0.5), w_max=1.0, generator=_gen())
    on = float((arr.g_pos == 40.0).double().mean())
    off = float((arr.g_pos == 1.0).double().mean())
    assert abs(on - 0.01) < 0.002 and abs(off - 0.03) < 0.003


def test_read_noise_per_read():
    dm = ResistiveMemory(n_levels=None, program_noise=0.0, read_noise=0.05, p_stuck_on=0.0, p_stuck_off=0.0)
    arr = dm.program(torch.full((N,), 0.5), w_max=1.0, generator=_gen())
    r1, r2 = dm.read(arr), dm.read(arr)
    assert not torch.equal(r1, r2)  # fresh noise on every read
    expected = float(dm.read_variance(arr)[0]) ** 0.5
    assert abs(float(r1.std()) - expected) / expected < 0.02
    assert abs(float(r1.mean()) - 0.5) < 0.002
    # the current-domain sampler has the variance of a matmul with a freshly read matrix
    w = arr.weights().reshape(1000, 200)
    var = dm.read_variance(arr).reshape(1000, 200)
    u = (torch.rand(4000, 1000, generator=_gen(2)) < 0.1).float()
    i = dm.noisy_matmul(u, w, var)
    resid = (i - u @ w) / ((u * u) @ var).sqrt()
    assert abs(float(resid.std()) - 1.0) < 0.02


def test_ideal_model_and_bad_parameters():
    assert make_device_model("none") is None and make_device_model(None) is None
    assert isinstance(make_device_model("rram", read_noise=0.0), ResistiveMemory)
    with pytest.raises(ValueError, match="unknown device model"):
        make_device_model("pcm")
    with pytest.raises(ValueError, match="g_max must lie in"):
        ResistiveMemory(g_min=10, g_max=5)
    with pytest.raises(ValueError, match="n_levels"):
        ResistiveMemory(n_levels=1)
    with pytest.raises(ValueError, match="read_noise"):
        ResistiveMemory(read_noise=-0.1)
    with pytest.raises(ValueError, match="p_stuck"):
        ResistiveMemory(p_stuck_on=0.7, p_stuck_off=0.5)
    with pytest.raises(ValueError, match="NaN"):
        ResistiveMemory().program(torch.tensor([math.nan]))
