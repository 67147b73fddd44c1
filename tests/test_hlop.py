"""HLOP core: Oja subspace learning, projection, gradient projection for Linear and Conv2d, spiking option."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from snn.continual.hlop import (HLOP, Subspace, oja_step, orthonormal_rows, principal_angles, project_out,
                                quantise_spikes)


def _data(n=24, top=(9.0, 7.0, 5.0, 4.0), noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g))
    ev = torch.tensor(list(top) + [noise] * (n - len(top)))
    return Q, Q * ev.sqrt(), g


def test_oja_converges_to_top_k_principal_subspace():
    torch.manual_seed(0)
    Q, C, g = _data()
    s = Subspace(24, lr=0.5, momentum=0.9, iterations=2)
    s.grow(4)
    for _ in range(300):
        s.hebbian(torch.randn(128, 24, generator=g) @ C.t())
    assert principal_angles(s.H, Q[:, :4].t()).max() < 0.1
    assert torch.allclose(s.H @ s.H.t(), torch.eye(4), atol=0.02)  # Oja's fixed points are orthonormal


def test_new_neurons_learn_the_residual_subspace_and_old_stay_frozen():
    torch.manual_seed(0)
    n = 20
    Q, _ = torch.linalg.qr(torch.randn(n, n))
    C = Q * torch.tensor([9.0, 8.0, 4.0, 3.0] + [0.1] * (n - 4)).sqrt()
    s = Subspace(n, lr=0.5, momentum=0.9, iterations=2)
    s.grow(2)
    for _ in range(200):
        s.hebbian(torch.randn(128, n) @ C.t())
    s.consolidate()
    old = s.H.clone()
    s.grow(2)
    for _ in range(200):
        s.hebbian(torch.randn(128, n) @ C.t())
    assert torch.equal(s.H[:2], old)
    assert principal_angles(s.H[2:], Q[:, 2:4].t()).max() < 0.15
    assert principal_angles(s.H, Q[:, :4].t()).max() < 0.15


def test_oja_step_matches_the_rule():
    torch.manual_seed(1)
    H, x = torch.randn(3, 5) * 0.3, torch.randn(7, 5)
    y = x @ H.t()
    expected = H + 0.01 * (y.t() @ (x - y @ H)) / 7
    assert torch.allclose(oja_step(H.clone(), x, 0.01), expected, atol=1e-6)
    # with frozen rows and the precomputed residual, same as the full formula on the learnable rows
    H2 = orthonormal_rows(3, 5)
    full = oja_step(H2.clone(), x, 0.01, n_frozen=1)
    xr = x - (x @ H2[:1].t()) @ H2[:1]
    fast = oja_step(H2.clone(), x, 0.01, n_frozen=1, x_res=xr)
    assert torch.allclose(full, fast, atol=1e-6) and torch.equal(full[0], H2[0])


def test_projection_removes_subspace_and_keeps_complement():
    torch.manual_seed(0)
    H = orthonormal_rows(3, 10)
    inside = torch.randn(4, 3) @ H
    outside = project_out(torch.randn(4, 10), H)
    assert torch.allclose(project_out(inside, H), torch.zeros(4, 10), atol=1e-5)
    assert torch.allclose(project_out(outside, H), outside, atol=1e-5)
    assert torch.allclose(outside @ H.t(), torch.zeros(4, 3), atol=1e-5)
    assert torch.equal(project_out(outside, torch.zeros(0, 10)), outside)


def test_grow_initialises_orthonormal_and_caps_at_n():
    s = Subspace(6)
    assert s.grow(4) == 4 and s.grow(5) == 2 and s.k == 6
    assert torch.allclose(s.H @ s.H.t(), torch.eye(6), atol=1e-5)


def _protected(layer, x, k):
    """HLOP over one layer with an exact basis of its inputs' first k principal directions consolidated."""
    net = nn.Sequential(layer)
    h = HLOP(net, k=k, include_bias=True)
    h.begin_task(0)
    return net, h


def test_linear_gradient_projection_equals_projected_presynaptic_trace():
    torch.manual_seed(0)
    lin = nn.Linear(8, 5)
    net, h = _protected(lin, None, 3)
    h.end_task()
    H = h.subspaces[0].H
    x, err = torch.randn(16, 8), torch.randn(16, 5)
    (lin(x) * err).sum().backward()
    h.project_gradients()
    xa = torch.cat([x, torch.ones(16, 1)], 1)
    xhat = xa - (xa @ H.t()) @ H  # x̂ = x - HᵀHx as the presynaptic trace
    expected = err.t() @ xhat
    assert torch.allclose(lin.weight.grad, expected[:, :8], atol=1e-5)
    assert torch.allclose(lin.bias.grad, expected[:, 8], atol=1e-5)
    # an update along the projected gradient leaves the response to inputs in the subspace unchanged
    inside = (torch.randn(4, 3) @ H)
    inside = inside / inside[:, -1:]  # augmented vectors [x, 1]
    before = lin(inside[:, :8]).detach()
    with torch.no_grad():
        lin.weight -= lin.weight.grad
        lin.bias -= lin.bias.grad
    assert torch.allclose(lin(inside[:, :8]), before, atol=1e-4)


def test_conv2d_gradient_projection_equals_projected_patches():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    net = nn.Sequential(conv)
    h = HLOP(net, k=5, include_bias=False)
    h.begin_task(0)
    h.end_task()
    H = h.subspaces[0].H
    x = torch.randn(2, 2, 5, 5)
    out = conv(x)
    err = torch.randn_like(out)
    (out * err).sum().backward()
    h.project_gradients()
    patches = F.unfold(x, 3, padding=1)  # [B, C·9, L]
    phat = patches - H.t() @ (H @ patches)
    expected = torch.einsum("bol,bnl->on", err.flatten(2), phat).reshape(conv.weight.shape)
    assert torch.allclose(conv.weight.grad, expected, atol=1e-4)


def test_hooks_record_traces_only_while_collecting_and_training():
    net = nn.Sequential(nn.Linear(4, 3))
    h = HLOP(net, k=2)
    h.begin_task(0)
    before = h.subspaces[0].H.clone()
    net(torch.randn(5, 4))
    h.hebbian_update()
    assert torch.equal(h.subspaces[0].H, before)
    h.collect(True)
    net(torch.randn(5, 4))
    h.collect(False)
    h.hebbian_update()
    assert not torch.equal(h.subspaces[0].H, before)
    h.remove()


def test_spiking_lateral_neurons_quantise_to_spike_counts():
    y = torch.tensor([-30.0, -0.26, 0.0, 0.24, 7.77, 25.0])
    q = quantise_spikes(y, scale=20.0, steps=100)
    assert torch.allclose(q, torch.tensor([-20.0, -0.2, 0.0, 0.2, 7.8, 20.0]))
    torch.manual_seed(0)
    Q, C, g = _data()
    s = Subspace(24, lr=0.5, iterations=2, spiking_steps=1000, spiking_scale=20.0)
    s.grow(4)
    for _ in range(300):
        s.hebbian(torch.randn(128, 24, generator=g) @ C.t())
    assert principal_angles(s.H, Q[:, :4].t()).max() < 0.15


@pytest.mark.parametrize("kw, msg", [
    (dict(trace="rates"), "trace"), (dict(k=[1, 2, 3]), "one non-negative int per"), (dict(k=-1), "k must"),
    (dict(layers=["nope"]), "no layer named"), (dict(lr=0.0), "lr"), (dict(momentum=1.0), "momentum"),
    (dict(iterations=0), "iterations"), (dict(max_rows=0), "max_rows"), (dict(spiking_steps=0), "spiking_steps")])
def test_bad_arguments_are_clear_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        HLOP(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), **kw)


def test_unsupported_layers_are_rejected():
    with pytest.raises(TypeError, match="Linear and nn.Conv2d"):
        HLOP(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), layers=["1"])
    with pytest.raises(ValueError, match="traces have"):
        Subspace(4).hebbian(torch.randn(2, 5))


def test_complement_form_equals_direct_projection_for_large_subspaces():
    torch.manual_seed(0)
    big = Subspace(12)
    big.grow(9)
    big.consolidate()
    g = torch.randn(5, 12)
    assert big._complement() is not None and big._complement().shape == (12, 3)
    assert torch.allclose(big.project(g), project_out(g, big.H), atol=1e-5)


# ---------------------------------------------------------------------------------------------- input projection
def _two_projections(make_input, T=3, B=5, n=8, out=6, k=4, seed=0, multi=True):
    """The same layer, batch and subspace, projected on the gradient and on the inputs: both .grads."""
    grads = {}
    for mode in ("gradient", "input", "auto"):
        torch.manual_seed(seed)
        lin = nn.Linear(n, out)
        h = HLOP(nn.Sequential(lin), k=k, project=mode)
        h.begin_task(0)
        h.end_task()
        h.begin_task(1)
        x = make_input(T, B, n)
        h.collect(True)
        if multi:
            o = lin(x)  # [T, B, out]
        else:
            o = torch.stack([lin(x[t]) for t in range(T)])  # one call per step, as online training runs
        h.collect(False)
        (o.tanh() * torch.linspace(-1, 1, o.numel()).reshape(o.shape)).sum().backward()
        h.project_gradients()
        grads[mode] = (lin.weight.grad.clone(), lin.bias.grad.clone(), h)
    return grads


@pytest.mark.parametrize("repeated", [True, False])
@pytest.mark.parametrize("multi", [True, False])
def test_input_projection_equals_gradient_projection_on_a_linear_layer(repeated, multi):
    def make(T, B, n):
        g = torch.Generator().manual_seed(3)
        return torch.rand(B, n, generator=g).expand(T, B, n) if repeated else torch.rand(T, B, n, generator=g)
    grads = _two_projections(make, multi=multi)
    wg, bg, hg = grads["gradient"]
    assert grads["input"][2]._deltas[0] and not hg._deltas[0]  # the input path ran (output gradients captured)
    for mode in ("input", "auto"):
        w, b, _ = grads[mode]
        assert torch.allclose(w, wg, atol=1e-5) and torch.allclose(b, bg, atol=1e-5), mode
    # and the update is orthogonal to the protected subspace (augmented with the bias column)
    H = hg.subspaces[0].H[:hg.subspaces[0].n_frozen]
    assert torch.allclose(torch.cat([wg, bg[:, None]], 1) @ H.t(), torch.zeros(6, 4), atol=1e-5)


def test_auto_projects_inputs_only_when_fewer_rows_and_counts_repeated_steps_once():
    from snn.continual.hlop import _distinct_rows
    x = torch.rand(5, 8).expand(3, 5, 8).contiguous()
    d = torch.randn(3, 5, 6)
    X, D, rep = _distinct_rows([x], [d])
    assert rep and X.shape == (5, 8) and torch.allclose(D, d.sum(0))
    assert torch.allclose(D.t() @ X, d.flatten(0, 1).t() @ x.flatten(0, 1), atol=1e-5)  # same gradient
    x2 = torch.rand(3, 5, 8)
    X, D, rep = _distinct_rows([x2], [d])
    assert not rep and X.shape == (15, 8) and D.shape == (15, 6)


def test_cached_residual_gives_the_same_hebbian_update():
    """Input projection hands Oja the batch's projected rates; the subspace learns exactly what it would have
    learned from the recorded traces (gradient projection recomputes them)."""
    def make(T, B, n):
        return torch.rand(B, n, generator=torch.Generator().manual_seed(4)).expand(T, B, n)
    grads = _two_projections(make)
    hg, hi = grads["gradient"][2], grads["input"][2]
    assert hi._residual[0] is not None and hg._residual[0] is None
    hg.hebbian_update()
    hi.hebbian_update()
    assert torch.allclose(hg.subspaces[0].H, hi.subspaces[0].H, atol=1e-6)
    assert hi._residual[0] is None and not hi._deltas[0]  # forgotten after the update


def test_hebbian_step_is_normalised_by_the_residual_energy():
    torch.manual_seed(0)
    s = Subspace(10, lr=0.3, momentum=0.0, iterations=1)
    s.grow(3)
    s.consolidate()
    s.grow(2)
    x = torch.randn(16, 10)
    H0 = s.H.clone()
    s.hebbian(x)
    xr = project_out(x, H0[:3])
    expected = oja_step(H0.clone(), x, 0.3 / float((xr * xr).sum(1).mean()), n_frozen=3, x_res=xr)
    assert torch.allclose(s.H, expected, atol=1e-6)
    # passing the residual gives the same step; iterations can be overridden per call
    s2 = Subspace(10, lr=0.3, momentum=0.0, iterations=1)
    s2.H, s2.velocity, s2.n_frozen = H0.clone(), torch.zeros(5, 10), 3
    s2.hebbian(x, x_res=xr)
    assert torch.allclose(s2.H, expected, atol=1e-6)
    s2.hebbian(x, iterations=0)
    assert torch.allclose(s2.H, expected, atol=1e-6)


def test_bad_projection_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="project must be one of"):
        HLOP(nn.Sequential(nn.Linear(4, 3)), project="weights")


def test_orthonormalise_keeps_the_learned_span_and_makes_the_projection_exact():
    torch.manual_seed(0)
    Q, C, g = _data(n=16)
    s = Subspace(16, lr=0.5, iterations=1, orthonormalise=True)
    s.grow(3)
    s.consolidate()
    old = s.H.clone()
    s.grow(2)
    for _ in range(30):  # a few Oja steps: nearly, not exactly, orthonormal
        s.hebbian(torch.randn(64, 16, generator=g) @ C.t())
    before = s.H.clone()
    assert (before @ before.t() - torch.eye(5)).abs().max() > 1e-4
    s.consolidate()
    assert torch.equal(s.H[:3], old)  # the older neurons are untouched
    assert torch.allclose(s.H @ s.H.t(), torch.eye(5), atol=1e-5)
    assert principal_angles(s.H[3:], before[3:] - (before[3:] @ old.t()) @ old).max() < 1e-3  # same span
    v = torch.randn(4, 16)
    assert torch.allclose(s.project(s.project(v)), s.project(v), atol=1e-5)  # an exact projector


@pytest.mark.parametrize("T, repeated, expect_input", [(3, True, True), (3, False, True), (5, False, False)])
def test_auto_picks_the_cheaper_projection(T, repeated, expect_input):
    """'auto' projects the N input rows when N·(2r + out) < 2·out·r (here out 64, r = k = 8: N < 12.8)."""
    torch.manual_seed(0)
    lin = nn.Linear(31, 64)  # n = 32 with the bias column
    h = HLOP(nn.Sequential(lin), k=8)
    h.begin_task(0)
    h.end_task()
    h.begin_task(1)
    x = torch.rand(4, 31).expand(T, 4, 31) if repeated else torch.rand(T, 4, 31)
    h.collect(True)
    lin(x).square().sum().backward()
    h.collect(False)
    g = lin.weight.grad.clone()
    assert h._project_inputs(0, lin, h.subspaces[0]) == expect_input
    if not expect_input:  # nothing was touched: project_gradients falls back to the gradient
        assert torch.equal(lin.weight.grad, g)


def test_step_traces_count_a_repeated_input_once_and_reuse_the_projected_rows():
    """trace='steps': every step of every sample, but an input that is the same at every step (direct encoding)
    gives its B rows once (the same subspace, a T-th of the work), and input projection's residual is reused."""
    from snn.continual.hlop import _traces
    lin = nn.Linear(8, 6)
    x = torch.rand(5, 8).expand(3, 5, 8)
    assert torch.equal(_traces(lin, [x], "steps", None, False), x[0])
    s = (torch.rand(3, 5, 8) > 0.5).float()
    assert torch.equal(_traces(lin, [s], "steps", None, True)[:, :-1], s.flatten(0, 1))
    hs = {}
    for mode in ("gradient", "input"):
        torch.manual_seed(0)
        lin = nn.Linear(8, 6)
        h = HLOP(nn.Sequential(lin), k=4, project=mode, trace="steps")
        h.begin_task(0)
        h.end_task()
        h.begin_task(1)
        h.collect(True)
        o = lin(x)
        h.collect(False)
        o.square().sum().backward()
        h.project_gradients()
        assert (h._residual[0] is not None) == (mode == "input")
        h.hebbian_update()
        hs[mode] = h.subspaces[0].H.clone()
    assert torch.allclose(hs["gradient"], hs["input"], atol=1e-6)
