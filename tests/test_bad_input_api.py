"""Bad input to the encoders, the liquid state machine, its device model and readouts: clear errors that name
the argument and the accepted range, raised before any simulation."""
import math

import pytest
import torch
from badinput import expect_clear_error

from snn import encoding
from snn.lsm import LiquidStateMachine, ResistiveMemory
from snn.lsm.readout import LogisticReadout, RidgeReadout

NAN, INF = math.nan, math.inf
X01 = torch.rand(3, 4)


@pytest.mark.parametrize("call, exc, names", [
    (lambda: encoding.latency(X01, 4, method="log", tau=0.0), ValueError, ["tau", "(0"]),
    (lambda: encoding.latency(X01, 4, method="log", tau=-2.0), ValueError, ["tau"]),
    (lambda: encoding.latency(X01, 4, method="log", tau=NAN), ValueError, ["tau", "finite"]),
    (lambda: encoding.latency(X01, 4, method="log", threshold=1.5), ValueError, ["threshold", "[0"]),
    (lambda: encoding.latency(X01, 4, method="exp"), ValueError, ["method", "'linear'"]),
    (lambda: encoding.LatencyEncoder(4, method="log", tau=0), ValueError, ["tau"]),
    (lambda: encoding.direct(X01.to(torch.complex64), 4), TypeError, ["direct", "complex"]),
    (lambda: encoding.poisson(X01.to(torch.complex64), 4), TypeError, ["poisson", "complex"]),
    (lambda: encoding.delta(torch.rand(5, 2).to(torch.complex64)), TypeError, ["delta", "complex"]),
    (lambda: encoding.delta(torch.rand(5, 2), threshold=INF), ValueError, ["threshold", "finite"]),
    (lambda: encoding.direct(X01, 0), ValueError, ["T", "positive"]),
    (lambda: encoding.direct(X01, True), ValueError, ["T"]),
    (lambda: encoding.direct([[0.5]], 4), TypeError, ["torch.Tensor"]),
], ids=lambda v: None)
def test_encoder_arguments(call, exc, names):
    expect_clear_error(call, exc, *names)


def test_latency_log_with_good_tau_still_encodes():
    s = encoding.latency(torch.tensor([0.9, 0.005]), 8, method="log", tau=2.0)
    assert s.shape == (8, 2) and s[:, 0].sum() == 1 and s[:, 1].sum() == 0


def lsm(**kw):
    return LiquidStateMachine(16, 20, **kw)


@pytest.mark.parametrize("kw, names", [
    (dict(v_threshold=NAN), ["v_threshold", "finite"]),
    (dict(v_threshold=INF), ["v_threshold", "finite"]),
    (dict(v_reset=1.0), ["v_reset", "v_threshold"]),
    (dict(v_reset=2.0, v_threshold=1.0), ["v_reset", "below"]),
    (dict(spectral_radius=-1.0), ["spectral_radius", "[0"]),
    (dict(spectral_radius=NAN), ["spectral_radius", "finite"]),
    (dict(input_scale=INF), ["input_scale", "finite"]),
    (dict(input_scale=-1.0), ["input_scale"]),
    (dict(frac_exc=1.5), ["frac_exc", "[0, 1]"]),
    (dict(p_rec=-0.1), ["p_rec"]),
    (dict(p_in=NAN), ["p_in"]),
    (dict(inh_gain=-2.0), ["inh_gain"]),
    (dict(tau=0.5), ["tau", "[1"]),
    (dict(trace_tau=0.0), ["trace_tau"]),
    (dict(lam=0.0), ["lam"]),
    (dict(input_envelope=-3.0), ["input_envelope"]),
    (dict(input_frac_exc=2.0), ["input_frac_exc"]),
], ids=lambda v: None if isinstance(v, list) else ",".join(f"{k}={v[k]}" for k in v))
def test_reservoir_parameters(kw, names):
    expect_clear_error(lambda: lsm(**kw), ValueError, "LiquidStateMachine", *names)


@pytest.mark.parametrize("kw, exc, name", [(dict(n_inputs=0), ValueError, "n_inputs"),
                                           (dict(n_neurons=2.5), TypeError, "n_neurons"),
                                           (dict(n_neurons=-4), ValueError, "n_neurons"),
                                           (dict(seed=1.5), TypeError, "seed")], ids=lambda v: None)
def test_reservoir_sizes(kw, exc, name):
    kw = {"n_inputs": 16, "n_neurons": 20, **kw}
    expect_clear_error(lambda: LiquidStateMachine(**kw), exc, "LiquidStateMachine", name)


def test_reservoir_refuses_complex_input_and_bad_batching():
    net = lsm(engine="torch")
    x = torch.rand(6, 2, 16)
    expect_clear_error(lambda: net.run(x.to(torch.complex64)), TypeError, "complex")
    expect_clear_error(lambda: net.features(x, batch_size=0), ValueError, "batch_size", "[1, inf]")
    expect_clear_error(lambda: net.run(x, n_bins=1.5), TypeError, "n_bins")
    expect_clear_error(lambda: net.run(x, n_bins=7), ValueError, "n_bins", "T=6", "[1, 6]")


@pytest.mark.parametrize("kw, name", [
    (dict(g_min=NAN), "g_min"), (dict(g_max=INF), "g_max"), (dict(g_min=5.0, g_max=5.0), "g_max"),
    (dict(switch_std=NAN), "switch_std"), (dict(switch_mean=100.0), "switch_mean"),
    (dict(read_noise=INF), "read_noise"), (dict(program_noise=-0.1), "program_noise"),
    (dict(p_stuck_on=NAN), "p_stuck_on"), (dict(p_stuck_on=0.6, p_stuck_off=0.6), "p_stuck_on + p_stuck_off"),
    (dict(n_levels=1), "n_levels"), (dict(n_levels=2.5), "n_levels"),
], ids=lambda v: None if isinstance(v, str) else ",".join(f"{k}={v[k]}" for k in v))
def test_device_model_parameters(kw, name):
    expect_clear_error(lambda: ResistiveMemory(**kw), ValueError, "ResistiveMemory", name)


@pytest.mark.parametrize("make, name", [
    (lambda: RidgeReadout(alpha=INF), "alpha"), (lambda: RidgeReadout(alpha=-1.0), "alpha"),
    (lambda: RidgeReadout(alphas=(1.0, NAN)), "alphas"), (lambda: RidgeReadout(val_fraction=1.0), "val_fraction"),
    (lambda: LogisticReadout(l2=INF), "l2"), (lambda: LogisticReadout(max_iter=0), "max_iter"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_readout_parameters(make, name):
    expect_clear_error(make, ValueError, name)


@pytest.mark.parametrize("make, name", [
    (lambda: __import__("snn.continual.baselines", fromlist=["EWC"]).EWC(lam=NAN), "lam"),
    (lambda: __import__("snn.continual.baselines", fromlist=["EWC"]).EWC(lam=INF), "lam"),
    (lambda: __import__("snn.continual.hlop", fromlist=["Subspace"]).Subspace(8, spiking_scale=0.0), "spiking_scale"),
], ids=["ewc-nan", "ewc-inf", "subspace-scale"])
def test_continual_parameters(make, name):
    expect_clear_error(make, ValueError, name)
