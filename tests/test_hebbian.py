"""SoftHebb layers and neuro-modulated Hebbian test-time adaptation (snn.hebbian)."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from snn.continual.hlop import oja_step, principal_angles
from snn.hebbian import (NHL, METHODS, NoAdaptation, SoftHebbConv2d, SoftHebbLinear, SpikingBlock,
                         corrupt, make_adapter, modulated_cnn, run_stream, softhebb_cnn, softhebb_mlp,
                         train_hebbian, train_source)
from snn.hebbian import rule
from snn.hebbian.experiment import load_split
from snn.hebbian.viz import receptive_fields

from badinput import expect_clear_error, expect_cli_error

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- the rule
def test_linear_regime_is_ojas_rule_and_finds_the_principal_direction():
    g = torch.Generator().manual_seed(0)
    n = 8
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    cov = q @ torch.diag(torch.tensor([4.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.1], dtype=torch.float64)) @ q.t()
    chol = torch.linalg.cholesky(cov)
    layer = SoftHebbLinear(n, 1, activation="linear", adaptive=False, normalise=False, lr=0.01,
                           weight_range=1.0, generator=g).double()
    # one step is HLOP's Oja subspace step with a single neuron
    x = torch.randn(64, n, generator=g, dtype=torch.float64) @ chol.t()
    expected = oja_step(layer.weight.detach().clone(), x, 0.01, clip=math.inf)
    layer.hebbian_update(x)
    assert torch.allclose(layer.weight.detach(), expected, rtol=1e-12, atol=1e-14)
    for _ in range(400):
        layer.hebbian_update(torch.randn(256, n, generator=g, dtype=torch.float64) @ chol.t())
    w = layer.weight.detach()
    principal = torch.linalg.eigh(cov).eigenvectors[:, -1:].t()
    assert float(principal_angles(w, principal)[0]) < 0.05
    assert abs(float(w.norm()) - 1) < 0.02


def _clusters(g, n_clusters=4, n=16, batch=32, noise=0.1):
    centres = F.normalize(torch.randn(n_clusters, n, generator=g), dim=1)

    def draw(size=batch):
        label = torch.randint(0, n_clusters, (size,), generator=g)
        return centres[label] + noise * torch.randn(size, n, generator=g) / math.sqrt(n), label
    return centres, draw


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_wta_neurons_converge_to_the_cluster_centroids(seed):
    g = torch.Generator().manual_seed(seed)
    centres, draw = _clusters(g)
    layer = SoftHebbLinear(16, 8, temperature=0.05, lr=0.05, generator=g)  # anti-Hebbian, adaptive rate
    for _ in range(800):
        layer.hebbian_update(draw()[0])
    x, label = draw(2000)
    winner = layer(x).argmax(1)
    cos = F.normalize(layer.weight.detach(), dim=1) @ centres.t()
    owners = set()
    for c in range(4):  # each cluster is won by its own neuron, which sits on the cluster's normalised centroid
        won = winner[label == c]
        k = int(won.mode().values)
        assert float((won == k).float().mean()) > 0.75  # the losers, pushed away, grow and win a few strays
        assert float(cos[k, c]) > 0.999
        owners.add(k)
    assert len(owners) == 4
    assert torch.allclose(layer.norms()[sorted(owners)], torch.ones(4), atol=0.01)


def test_adaptive_rate_vanishes_on_the_unit_sphere():
    w = torch.stack([torch.full((4,), 0.5), torch.full((4,), 5.0)])  # norms 1 and 10
    rate = rule.adaptive_lr(w, 0.1, 0.5).flatten()
    assert float(rate[0]) < 1e-5
    assert math.isclose(float(rate[1]), 0.1 * 3.0, rel_tol=1e-6)


def test_convolution_rule_is_the_dense_rule_on_every_patch():
    g = torch.Generator().manual_seed(0)
    conv = SoftHebbConv2d(3, 5, 3, stride=2, padding=1, dilation=2, adaptive=False, normalise=False,
                          generator=g).double()
    x = torch.randn(2, 3, 11, 11, generator=g, dtype=torch.float64)
    w0 = conv.weight.detach().clone()
    u = conv(x)
    conv.hebbian_update(x)
    patches = F.unfold(conv._pad(x), 3, dilation=2, stride=2).transpose(1, 2).reshape(-1, 27)
    u_rows = u.permute(0, 2, 3, 1).reshape(-1, 5)
    y_rows = rule.soft_wta(u_rows, 1.0, 1, anti_hebbian=True)
    expected = w0 + conv.lr * rule.hebbian_delta(patches, u_rows, y_rows, w0.reshape(5, -1)).reshape(w0.shape)
    assert torch.allclose(conv.weight.detach(), expected, rtol=1e-10, atol=1e-12)


def test_anti_hebbian_soft_wta_keeps_only_the_winner_positive():
    u = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    y = rule.soft_wta(u, 0.5, anti_hebbian=True)
    soft = torch.softmax(u / 0.5, 1)
    assert torch.allclose(y.abs(), soft)
    assert (y > 0).tolist() == [[False, True, False], [True, False, False]]


# ---------------------------------------------------------------------------------------------- training
def _no_backward(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("backward called during Hebbian training")
    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "backward", refuse)


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
@pytest.mark.parametrize("T", [None, 4])
def test_layerwise_training_never_calls_backward(monkeypatch, T, kind):
    x = torch.rand(64, 1, 12, 12)
    net = (softhebb_cnn((1, 12, 12), channels=(6, 8), kernels=(3,), T=T) if kind == "cnn" else
           softhebb_mlp(144, hidden=(20, 10), T=T))
    before = [layer.weight.detach().clone() for layer in net.hebbian_layers()]
    graph_modes = []
    for block in net.blocks:
        layer = block.layer
        update = layer.hebbian_update
        layer.hebbian_update = lambda *a, _u=update, **k: (graph_modes.append(torch.is_grad_enabled()), _u(*a, **k))[1]
    _no_backward(monkeypatch)
    train_hebbian(net, x, epochs=1, batch_size=16)
    assert graph_modes and not any(graph_modes)  # every update ran without an autograd graph
    for layer, w0 in zip(net.hebbian_layers(), before):
        assert layer.updates == 4 and layer.weight.grad is None and not layer.weight.requires_grad
        assert not torch.equal(layer.weight, w0)
    if T:  # each spiking block's gain puts the 99th percentile of its drive at the threshold: the net fires
        assert all(float(b.gain) != 1.0 for b in net.blocks)
        rates = net.eval().features(x)
        assert 0.01 < float(rates.mean()) < 0.9


def test_spiking_block_learns_from_spike_rates():
    x_seq = (torch.rand(6, 10, 2, 7, 7) < 0.3).float()  # input spike trains [T, B, C, H, W]
    rate = softhebb_cnn((2, 7, 7), channels=(4,), kernels=(3,), seed=3).blocks[0]
    spiking = SpikingBlock(copy.deepcopy(rate), "if")
    rate.hebbian_update(x_seq.mean(0))
    spiking.hebbian_update(x_seq)
    assert torch.equal(spiking.layer.weight, rate.layer.weight)
    out = spiking.eval()(x_seq)
    assert out.shape == (6, 10, 4, 3, 3) and set(out.unique().tolist()) <= {0.0, 1.0}


def test_spiking_network_classifies_spike_rates():
    net = softhebb_cnn((1, 8, 8), channels=(4,), kernels=(3,), T=5).eval()
    f = net.features(torch.rand(3, 1, 8, 8))
    assert f.shape == (3, net.n_features)
    assert torch.all((f * 5 - (f * 5).round()).abs() < 1e-6)  # spike counts over T = 5 steps


# ---------------------------------------------------------------------------------------------- test-time adaptation
@pytest.fixture(scope="module")
def source():
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te = load_split("digits", None, None)
    model = modulated_cnn((1, 8, 8), 16, kernel=3, top_channels=16, seed=0)
    train_source(model, x_tr, y_tr, epochs=2, batch_size=32, lr=3e-3)
    return model, x_te, y_te


def test_adaptation_improves_accuracy_under_a_contrast_shift(source):
    model, x, y = source
    shifted = corrupt(x, "contrast", 0.3)
    clean = run_stream(NoAdaptation(copy.deepcopy(model)), x, y, 64)
    none = run_stream(NoAdaptation(copy.deepcopy(model)), shifted, y, 64)
    nhl = run_stream(NHL(copy.deepcopy(model), hebbian_lr=0.05), shifted, y, 64)
    assert clean > 0.85 and none < clean - 0.1
    assert nhl > none + 0.1


@pytest.mark.parametrize("method", METHODS)
def test_adaptation_off_leaves_the_model_bit_identical(source, method):
    model = copy.deepcopy(source[0])
    x, y = corrupt(source[1][:128], "noise", 0.3), source[2][:128]
    state = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    expected = NoAdaptation(copy.deepcopy(model)).predict(x)
    adapter = make_adapter(method, model, enabled=False)
    logits = torch.cat([adapter(xb) for xb in x.split(32)])
    assert torch.equal(logits, expected)
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    if method in ("tent", "nhl"):  # the same adapter, enabled, does change the model; reset() undoes it
        adapter.enabled = True
        run_stream(adapter, x, y, 32)
        assert not all(torch.equal(state[k], model.state_dict()[k]) for k in state)
        adapter.reset()
        assert all(torch.equal(state[k], model.state_dict()[k]) for k in state)


def test_nhl_modulates_the_hebbian_update_by_confidence(source):
    model = copy.deepcopy(source[0])
    x = source[1][:64]
    block = model.blocks[0]
    seen = []
    update = block.layer.hebbian_update
    block.layer.hebbian_update = lambda h, m=None, **k: (seen.append(m), update(h, m, **k))[1]
    NHL(model, tune_modulator=False)(x)
    m = seen[0]
    assert m.shape == (64,) and float(m.min()) >= 0 and float(m.max()) <= 1 and float(m.std()) > 0


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_arguments_name_themselves():
    expect_clear_error(lambda: SoftHebbConv2d(1, 4, 3, temperature=0), ValueError, "temperature")
    expect_clear_error(lambda: SoftHebbLinear(4, 2, temperature=-1.0), ValueError, "temperature")
    expect_clear_error(lambda: SoftHebbLinear(4, 2, lr=0), ValueError, "lr")
    expect_clear_error(lambda: SoftHebbConv2d(1, 4, 3, lr=float("nan")), ValueError, "lr")
    expect_clear_error(lambda: rule.soft_wta(torch.zeros(2, 3), 0.0), ValueError, "temperature")
    expect_clear_error(lambda: NHL(modulated_cnn((1, 8, 8), 2, top_channels=2), hebbian_lr=-1), ValueError,
                       "hebbian_lr")
    expect_clear_error(lambda: NHL(softhebb_cnn((1, 8, 8), channels=(2,))), TypeError, "modulator")
    expect_clear_error(lambda: corrupt(torch.rand(2, 1, 8, 8), "blur"), ValueError, "kind", "noise")
    expect_clear_error(lambda: softhebb_cnn(channels=(4, 8), kernels=(3, 5, 7)), ValueError, "kernels", "per block")
    expect_clear_error(lambda: softhebb_mlp(hidden=(4,), temperatures=(0.0,)), ValueError, "temperature")
    expect_clear_error(lambda: corrupt(torch.rand(2, 1, 8, 8), "noise", -0.1), ValueError, "severity")


def test_bad_inputs_are_refused_before_learning():
    conv = SoftHebbConv2d(1, 4, 3)
    w = conv.weight.detach().clone()
    expect_clear_error(lambda: conv.hebbian_update(torch.rand(2, 3, 8, 8)), ValueError, "channels", "in_channels")
    expect_clear_error(lambda: conv.hebbian_update(torch.rand(8, 8)), ValueError, "rank", "x")
    bad = torch.rand(2, 1, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    expect_clear_error(lambda: conv.hebbian_update(bad), ValueError, "NaN")
    expect_clear_error(lambda: conv.hebbian_update(torch.rand(2, 1, 8, 8), torch.ones(3)), ValueError,
                       "modulation")
    assert torch.equal(conv.weight, w)
    dense = SoftHebbLinear(5, 3)
    expect_clear_error(lambda: dense.hebbian_update(torch.rand(4, 6)), ValueError, "in_features")
    expect_clear_error(lambda: train_hebbian(softhebb_cnn((1, 8, 8), channels=(2,)), bad), ValueError, "NaN")
    expect_clear_error(lambda: NoAdaptation(modulated_cnn((1, 8, 8), 2, top_channels=2))(bad), ValueError, "NaN")


def test_cli_bad_flags(capsys):
    expect_cli_error(["hebbian", "train", "--temperatures", "0"], capsys, "--temperatures")
    expect_cli_error(["hebbian", "adapt", "--hebbian-lr", "-1"], capsys, "--hebbian-lr")
    expect_cli_error(["hebbian", "train", "--spiking", "--neuron", "nope", "--dataset", "digits"], capsys,
                     "nope", "registered")


# ---------------------------------------------------------------------------------------------- command and plots
def test_cli_train_and_adapt_write_json_and_fields(tmp_path, capsys):
    from snn.cli import main

    out, png = tmp_path / "train.json", tmp_path / "fields.png"
    assert main(["hebbian", "train", "--dataset", "digits", "--n-train", "300", "--n-test", "100", "--channels", "6",
                 "--kernels", "3", "--probe-epochs", "15", "--baselines", "random", "--quiet", "--json", str(out),
                 "--fields", str(png)]) == 0
    r = json.loads(out.read_text())
    assert 0 <= r["random_accuracy"] <= 1 and r["softhebb_accuracy"] > 0.5 and png.stat().st_size > 0
    out = tmp_path / "adapt.json"
    assert main(["hebbian", "adapt", "--dataset", "digits", "--n-train", "300", "--n-test", "100",
                 "--corruption", "contrast", "--methods", "none", "nhl", "--hebbian-channels", "4",
                 "--source-epochs", "1", "--quiet", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r["corruptions"]["contrast"]) >= {"none", "nhl", "severity"}
    assert "contrast" in capsys.readouterr().out


def test_receptive_fields_grid(tmp_path):
    path = receptive_fields(torch.randn(10, 1, 5, 5), tmp_path / "f.png")
    assert path.stat().st_size > 0
    assert receptive_fields(torch.randn(4, 64), tmp_path / "g.png").exists()
    expect_clear_error(lambda: receptive_fields(torch.randn(4, 10), tmp_path / "h.png"), ValueError, "shape")
