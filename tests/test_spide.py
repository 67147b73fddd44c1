"""SPIDE: the forward equilibrium, the IDE gradient against finite differences, the spiking backward against IDE,
memory independent of T, the training method and model registry, and bad input."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from snn.spide import (EquilibriumError, EquilibriumWarning, FeedbackSNN, ForwardNeuron, NoFeedbackError,
                       SpideOptions, TernaryCouple, adjoint_rates, gradient, rate_equilibrium, simulate)
from snn.spide.models import spide_conv, spide_fc, spide_mlp
from snn.spide.update import parameter_grads, parameters_of
from snn.train.memory import PeakMemory
from badinput import expect_clear_error

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread: small tensors, steady on a shared machine."""


def random_net(n_in=6, widths=(8,), fb_std=0.3, in_std=1.0, leak=1.0, seed=0) -> FeedbackSNN:
    """A small feedback MLP in float64 with a contracting feedback (no norm cap, exact weights)."""
    torch.manual_seed(seed)
    net = spide_mlp((n_in,), list(widths), 3, leak=leak, init_gain=in_std, feedback_gain=fb_std * math.sqrt(widths[-1]),
                    feedback_norm=None, backend="torch").body.double()
    return net


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


# -- forward phase ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("widths,leak", [((12,), 1.0), ((10, 7), 1.0), ((12,), 0.95)])
def test_forward_rates_approach_the_rate_fixed_point(widths, leak):
    net = random_net(widths=widths, leak=leak)
    x = torch.rand(5, 6, dtype=D)
    exact, _ = rate_equilibrium(net, x, tol=1e-13)
    errors = []
    for T in (30, 300):
        with torch.no_grad():
            eq = simulate(net, x.expand(T, *x.shape))
        err = max(float((a - b).abs().mean()) for a, b in zip(eq.rates, exact))
        errors.append(err)
        assert err <= 4 * net.neuron.error_bound(T) + (0.05 if leak < 1 else 0.0), (T, err)
    if leak == 1.0:
        assert errors[1] < errors[0] / 3  # IF: the error shrinks like 1/T


def test_forward_matches_the_modified_reset_neuron_written_out():
    net = random_net(widths=(4,))
    x = torch.rand(2, 6, dtype=D)
    with torch.no_grad():
        eq = simulate(net, x.expand(20, 2, 6))
    # the same network written out with the paper's membrane equation u <- u + I - (V_th - u_rest)·s
    drive = net.input_map(x).detach()
    w = net.feedback.weight.detach()
    u, s, count = torch.zeros_like(drive), torch.zeros_like(drive), torch.zeros_like(drive)
    for t in range(20):
        u = u + drive + (s @ w.T if t else 0)
        s = (u >= 1.0).to(D)
        u = u - 2.0 * s
        count += s
    assert torch.equal(eq.rates[0], count / 20)


# -- IDE against finite differences --------------------------------------------------------------------------
def equilibrium_loss(net, x, v):
    rates, _ = rate_equilibrium(net, x, tol=1e-14)
    return float((rates[-1] * v).sum())


@pytest.mark.parametrize("build", ["fc", "mlp", "conv"])
def test_ide_gradient_matches_finite_differences(build):
    torch.manual_seed(1)
    if build == "conv":
        net = spide_conv((1, 4, 4), (2, 2), feedback_norm=None, init_gain=1.5, feedback_gain=0.3).body.double()
        x = torch.rand(2, 1, 4, 4, dtype=D)
    else:
        net = random_net(widths=(7,) if build == "fc" else (6, 5), seed=1)
        x = torch.rand(3, 6, dtype=D)
    rates, _ = rate_equilibrium(net, x, tol=1e-14)
    assert any(((a > 0) & (a < 1)).any() for a in rates) and any((a == 0).any() for a in rates)
    v = torch.randn_like(rates[-1])
    net.set_options(tol=1e-14, max_iter=5000)
    betas, _ = adjoint_rates(net, rates, v, "ide")
    params = parameters_of(net)
    grads, grad_x = parameter_grads(net, rates, betas, x, params, need_input=True)
    analytic = flat(grads + [grad_x])
    targets = [p.data for p in params] + [x]
    numeric = []
    eps = 1e-6
    picks = torch.randperm(len(analytic), generator=torch.Generator().manual_seed(0))[:10 if build == "conv" else 40]
    offsets = torch.tensor([0] + [t.numel() for t in targets]).cumsum(0)
    for k in picks.tolist():
        i = int((offsets[1:] > k).nonzero()[0])
        t, j = targets[i].view(-1), k - int(offsets[i])
        old = float(t[j])
        t[j] = old + eps
        up = equilibrium_loss(net, x, v)
        t[j] = old - eps
        down = equilibrium_loss(net, x, v)
        t[j] = old
        numeric.append((up - down) / (2 * eps))
    torch.testing.assert_close(analytic[picks], torch.tensor(numeric, dtype=D), rtol=1e-5, atol=1e-7)


def test_autograd_function_gives_the_ide_update_and_input_gradient():
    net = random_net(widths=(9,), seed=2).set_options(grad="ide", tol=1e-12)
    x_seq = torch.rand(3, 6, dtype=D).expand(25, 3, 6).requires_grad_(True)
    v = torch.randn(3, 9, dtype=D)
    (net(x_seq) * v).sum().backward()
    with torch.no_grad():
        eq = simulate(net, x_seq)
    betas, _ = adjoint_rates(net, eq.rates, v, "ide")
    params = parameters_of(net)
    grads, grad_x = parameter_grads(net, eq.rates, betas, eq.x_bar, params, need_input=True)
    for p, g in zip(params, grads):
        torch.testing.assert_close(p.grad, g)
    torch.testing.assert_close(x_seq.grad, grad_x.expand(25, 3, 6) / 25)


# -- SPIDE against IDE -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("leak,leak_back,steps", [(1.0, 1.0, (10, 30, 100, 250)), (0.95, 0.95, (10, 30, 100))])
def test_spide_gradient_converges_to_ide(leak, leak_back, steps):
    torch.manual_seed(3)
    model = spide_fc((20,), 40, 10, leak=leak)
    net = model.body
    net.couple = TernaryCouple(leak=leak_back)
    x, y = torch.rand(16, 20), torch.randint(0, 10, (16,))
    with torch.no_grad():
        eq = simulate(net, x.expand(30, 16, 20))
    out = eq.rates[-1].clone().requires_grad_(True)
    g, = torch.autograd.grad(F.cross_entropy(model.readout(out), y), out)
    params = parameters_of(net)
    betas, _ = adjoint_rates(net, eq.rates, g, "ide")
    reference = flat(parameter_grads(net, eq.rates, betas, eq.x_bar, params)[0])
    cosine = {}
    for T_back in steps:
        betas, stats = adjoint_rates(net, eq.rates, g, "spide", SpideOptions(T_back=T_back))
        grads = flat(parameter_grads(net, eq.rates, betas, eq.x_bar, params)[0])
        cosine[T_back] = float(F.cosine_similarity(grads, reference, dim=0))
        assert 0 < stats["backward_rate"] < 1 and stats["backward_saturated"] < 0.01
    assert cosine[10] < cosine[30] < cosine[100] and cosine[100] > 0.99, cosine  # the paper's T_back: 100, 250
    if leak_back == 1.0:  # exact in the limit; leaky couples (the paper's LIF backward) keep an O(1 - λ) bias
        assert cosine[100] < cosine[250] and cosine[250] > 0.999, cosine


# -- memory ----------------------------------------------------------------------------------------------------
def saved_bytes(model, T, grad, T_back=10):
    x = torch.rand(4, 1, 8, 8).expand(T, 4, 1, 8, 8)
    meter = PeakMemory()
    with gradient(model, grad, T_back=T_back), meter:
        model(x).mean(0).sum().backward()
    return meter.peak_bytes


def test_training_memory_does_not_grow_with_T():
    torch.manual_seed(0)
    model = spide_fc((1, 8, 8), 16)
    spide = [saved_bytes(model, T, "spide") for T in (4, 32)]
    assert spide[0] == spide[1] > 0
    assert saved_bytes(model, 32, "spide", T_back=40) == spide[0]  # nor with T_back
    bptt = [saved_bytes(model, T, "bptt") for T in (4, 32)]
    assert bptt[1] > 4 * bptt[0] and bptt[0] > spide[0]


# -- bad input -------------------------------------------------------------------------------------------------
def test_network_without_feedback_structure_is_refused():
    expect_clear_error(lambda: FeedbackSNN(nn.Linear(3, 4), None), NoFeedbackError, "feedback")
    expect_clear_error(lambda: FeedbackSNN(nn.Linear(3, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU())), TypeError,
                       "feedback.1", "ReLU", "affine")
    from snn.spide.network import feedback_networks
    expect_clear_error(lambda: feedback_networks(nn.Sequential(nn.Linear(3, 3))), NoFeedbackError, "Sequential",
                       "FeedbackSNN")
    net = FeedbackSNN(nn.Linear(3, 4), nn.Linear(4, 5))
    expect_clear_error(lambda: net(torch.rand(3, 2, 3)), ValueError, "feedback", "layer 0")


def test_nan_inputs_weights_and_gradients_are_clear_errors():
    model = spide_fc((1, 8, 8), 16)
    x = torch.rand(4, 2, 1, 8, 8)
    expect_clear_error(lambda: model(x.clone().fill_(float("nan"))), ValueError, "NaN")
    with gradient(model, "spide"):
        out = model(x).mean(0).sum()
        expect_clear_error(lambda: (out * float("nan")).backward(), ValueError, "NaN", "gradient")
    assert all(p.grad is None for p in model.body.parameters())  # no NaN reached the weights
    with torch.no_grad():
        model.body.feedback.parametrizations.weight.original[0, 0] = float("nan")
    expect_clear_error(lambda: model(x), ValueError, "feedback", "NaN")


def latch():
    """Two neurons: A fires, charges B, which then silences A for good (rates still drifting at T = 30)."""
    f, w = nn.Linear(1, 2, bias=False).double(), nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        f.weight.copy_(torch.tensor([[1.5], [0.0]]))
        w.weight.copy_(torch.tensor([[0.0, -100.0], [0.3, 0.0]]))
    return FeedbackSNN(f, w)


def test_non_convergent_equilibrium_is_a_named_warning_or_error():
    net = latch()
    x = torch.ones(30, 1, 1, dtype=D)
    with pytest.warns(EquilibriumWarning, match="did not settle"):
        net(x)
    net.set_options(on_unconverged="error")
    expect_clear_error(lambda: net(x), EquilibriumError, "T=30", "residual")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random_net()(torch.rand(3, 6, dtype=D).expand(30, 3, 6))  # a contracting network: no warning


def test_diverging_ide_solve_is_an_error():
    f, w = nn.Linear(1, 2, bias=False).double(), nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        f.weight.fill_(0.5)
        w.weight.copy_(torch.tensor([[0.0, 3.0], [3.0, 0.0]]))  # loop gain (3/2)^2 > 1 inside the masks
    net = FeedbackSNN(f, w)
    rates = [torch.tensor([[0.5, 0.5]], dtype=D)]
    expect_clear_error(lambda: adjoint_rates(net, rates, torch.ones(1, 2, dtype=D), "ide"), EquilibriumError,
                       "spectral radius")


def test_bad_options_are_named():
    expect_clear_error(lambda: SpideOptions(T_back=0), ValueError, "T_back")
    expect_clear_error(lambda: SpideOptions(grad="rtrl"), ValueError, "grad", "spide")
    expect_clear_error(lambda: SpideOptions(grad_scale=-1.0), ValueError, "grad_scale")
    expect_clear_error(lambda: ForwardNeuron(leak=0.0), ValueError, "leak")
    expect_clear_error(lambda: ForwardNeuron(v_threshold=1.0, u_rest=2.0), ValueError, "u_rest")
    net = spide_fc((4,), 3).body
    expect_clear_error(lambda: net.set_options(T_back=2.5), TypeError, "T_back")


def test_broyden_solver_agrees_with_fixed_point():
    net = random_net(widths=(6, 5), seed=4)
    x = torch.rand(3, 6, dtype=D)
    rates, _ = rate_equilibrium(net, x)
    g = torch.randn_like(rates[-1])
    fixed, _ = adjoint_rates(net, rates, g, "ide", SpideOptions(tol=1e-12))
    broyden, _ = adjoint_rates(net, rates, g, "ide", SpideOptions(tol=1e-12, solver="broyden"))
    for a, b in zip(fixed, broyden):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


# -- registry, training loop, convergence plot -------------------------------------------------------------
def test_registered_models_build_and_rebuild():
    import snn.models as models
    import snn.spide.zoo  # noqa: F401  registers the SPIDE models

    net = models.get("spide-fc", num_classes=10, in_channels=1, in_shape=[8, 8], hidden=12, neuron="if")
    assert net.body.neuron.leak == 1.0 and net(torch.rand(5, 2, 1, 8, 8)).shape == (5, 2, 10)
    lif = models.get("spide-conv", num_classes=4, in_channels=2, in_shape=[2, 8, 8], channels=[2, 3], neuron="lif")
    assert lif.body.neuron.leak == pytest.approx(0.95)  # tau 20 unless given
    again = models.build_model(models.model_config(lif))
    assert [p.shape for p in again.parameters()] == [p.shape for p in lif.parameters()]
    expect_clear_error(lambda: models.get("spide-mlp", num_classes=10, in_channels=1, neuron="plif"), ValueError,
                       "PLIF", "'if' or 'lif'")


def prototypes(n: int, classes: int = 4, seed: int = 0):
    """Noisy copies of one random 8x8 image per class, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, 1, 8, 8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return (protos[y] + 0.3 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1), y


def test_train_loop_learns_and_reports_sparsity(tmp_path):
    from snn.spide.convergence import gradient_error, plot_gradient_error
    from snn.spide.train import train

    torch.manual_seed(0)
    x, y = prototypes(480)
    model = spide_fc((1, 8, 8), 32, 4, T_back=30)
    h = train(model, (x[:320], y[:320]), (x[320:], y[320:]), grad="spide", T=8, epochs=2, lr=1e-2,
              batch_size=32, log=None)
    assert h["test_acc"][-1] > 0.6 and h["train_loss"][1] < h["train_loss"][0]  # chance: 0.25
    assert 0 < h["forward_rate"][-1] < 1 and 0 < h["backward_rate"][-1] < 1 and h["peak_mb"][-1] > 0
    r = gradient_error(model, x[:32].expand(8, 32, 1, 8, 8), y[:32], (5, 50))
    assert r["relative_error"][1] < r["relative_error"][0]
    png = plot_gradient_error({"fc": r}, tmp_path / "grad.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


# -- the training method and the command ---------------------------------------------------------------------
def test_fit_trains_feedback_models_with_spide_and_ide():
    from torch.utils.data import TensorDataset

    from snn.spide.method import CoarseEquilibriumWarning
    from snn.train import fit

    x, y = prototypes(256, seed=1)
    train, val = TensorDataset(x[:192], y[:192]), TensorDataset(x[192:], y[192:])
    for method in ("spide", "ide"):
        torch.manual_seed(0)
        model = spide_fc((1, 8, 8), 32, 4)
        r = fit(model, train, val, method=method, method_options={"T_back": 30} if method == "spide" else None,
                T=8, epochs=2, lr=1e-2, batch_size=32, log=None)
        assert r.val_acc > 0.6, (method, r.val_acc)
        assert model.body.options.grad == "bptt" and model.body.options.T_back == 100  # restored after the run
    r = fit(spide_fc((1, 8, 8), 8, 4), train, method="spide", T=8, epochs=1, batch_size=64, amp="bf16", log=None)
    assert math.isfinite(r.history["train_loss"][0])  # 16-bit rates under autocast, float32 backward
    with pytest.warns(CoarseEquilibriumWarning, match="T=2"):
        fit(spide_fc((1, 8, 8), 8, 4), train, method="spide", T=2, epochs=1, batch_size=64, log=None)
    import snn.models as models
    mlp = models.get("mlp", num_classes=4, in_channels=1, in_shape=[8, 8], hidden=[8])
    expect_clear_error(lambda: fit(mlp, train, method="spide", T=4, log=None), NoFeedbackError, "Sequential",
                       "FeedbackSNN")
    from snn.train.methods import make_method
    expect_clear_error(lambda: make_method("spide", T_bak=3), ValueError, "T_bak")


def test_spide_command_writes_the_gradient_error(tmp_path, capsys):
    import json

    from badinput import expect_cli_error
    from snn.cli import main

    out, png = tmp_path / "grad.json", tmp_path / "grad.png"
    assert main(["spide", "--T", "6", "--T-back", "5,60", "--batch-size", "8", "--json", str(out),
                 "--png", str(png)]) == 0
    r = json.loads(out.read_text())
    assert r["T_back"] == [5, 60] and r["relative_error"][1] < r["relative_error"][0] and png.stat().st_size > 0
    assert "cosine" in capsys.readouterr().out
    expect_cli_error(["spide", "--T-back", "0,10"], capsys, "--T-back")
    expect_cli_error(["spide", "--model", "mlp"], capsys, "--model", "spide-fc")
    not_spide = tmp_path / "ckpt.pt"
    torch.save({"x": 1}, not_spide)
    expect_cli_error(["spide", "--checkpoint", str(not_spide)], capsys, str(not_spide))
