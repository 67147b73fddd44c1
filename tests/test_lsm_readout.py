"""Readouts fit a separable synthetic task; contrastive heads align two modalities; bad inputs are clear errors."""
import pytest
import torch

from snn.lsm.readout import LogisticReadout, RidgeReadout, info_nce, make_readout, train_contrastive


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")



def _blobs(n=300, d=20, k=4, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + spread * torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("name", ["ridge", "logistic"])
def test_readouts_fit_separable_task(name):
    x, y = _blobs()
    xt, yt = _blobs(seed=0)[0][:100], _blobs(seed=0)[1][:100]
    r = make_readout(name).fit(x, y)
    assert r.score(x, y) == 1.0 and r.score(xt, yt) == 1.0


def test_ridge_primal_and_dual_agree():
    x, y = _blobs(n=50, d=80)
    a = RidgeReadout(alpha=3.0).fit(x, y)
    b = RidgeReadout(alpha=3.0).fit(x[:, :40], y)
    assert a.decision_function(x).shape == (50, 4) and b.score(x[:, :40], y) == 1.0
    # dual (F > n) equals the primal normal equations
    z = a.scaler(x.double())
    t = -torch.ones(50, 4, dtype=torch.float64)
    t[torch.arange(50), y] = 1
    w = torch.linalg.solve(z.T @ z + 3.0 * torch.eye(80, dtype=torch.float64), z.T @ (t - t.mean(0)))
    assert torch.allclose(a.w, w, atol=1e-6)
    auto = RidgeReadout().fit(x, y)
    assert auto.alpha_ in RidgeReadout.ALPHAS


def test_info_nce_prefers_aligned_pairs():
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    other = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    assert info_nce(z, z, 0.1) < info_nce(z, other, 0.1)
    labels = torch.arange(8) % 2
    assert torch.isfinite(info_nce(z, other, 0.1, labels, labels))


def test_contrastive_heads_align_modalities():
    xa, ya = _blobs(n=200, d=12, k=3, seed=1)
    xb, yb = _blobs(n=200, d=30, k=3, seed=2)
    ha, hb, losses = train_contrastive(xa, ya, xb, yb, d_out=8, hidden=32, epochs=100, batch=64)
    assert losses[-1] < losses[0]
    with torch.no_grad():
        za, zb = ha(xa), hb(xb)
    protos = torch.nn.functional.normalize(torch.stack([zb[yb == c].mean(0) for c in range(3)]), dim=-1)
    assert float(((za @ protos.T).argmax(1) == ya).float().mean()) > 0.95


def test_bad_inputs():
    x, y = _blobs()
    with pytest.raises(ValueError, match="one label per row"):
        RidgeReadout().fit(x, y[:-1])
    with pytest.raises(ValueError, match="non-negative integers"):
        RidgeReadout().fit(x, y.float())
    with pytest.raises(ValueError, match="NaN"):
        LogisticReadout().fit(torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match="alpha"):
        RidgeReadout(alpha=-1)
    with pytest.raises(ValueError, match="unknown readout"):
        make_readout("svm")
    with pytest.raises(ValueError, match="same length"):
        info_nce(torch.randn(3, 4), torch.randn(5, 4))


def test_ridge_primal_moments_in_blocks_equal_normal_equations(monkeypatch):
    x, y = _blobs(n=90, d=12)
    x = x + 5.0  # a large mean: the moments must centre exactly
    monkeypatch.setattr(RidgeReadout, "CHUNK", 7)  # many row blocks
    r = RidgeReadout(alpha=2.0).fit(x.float(), y)
    xd = x.double()
    mu, sd = xd.mean(0), xd.std(0)
    z = (xd - mu) / sd
    t = -torch.ones(90, 4, dtype=torch.float64)
    t[torch.arange(90), y] = 1
    w = torch.linalg.solve(z.T @ z + 2.0 * torch.eye(12, dtype=torch.float64), z.T @ (t - t.mean(0)))
    assert torch.allclose(r.scaler.mean, mu) and torch.allclose(r.scaler.std, sd)
    assert torch.allclose(r.w, w, atol=1e-8) and torch.allclose(r.bias, t.mean(0))
    assert torch.allclose(r.decision_function(x), z @ w + t.mean(0), atol=1e-8)
    auto = RidgeReadout().fit(x, y)  # validation split from the same blocks
    assert auto.alpha_ in RidgeReadout.ALPHAS and auto.score(x, y) > 0.9


def test_accuracy_standard_errors():
    from snn.lsm.probe import accuracy_se, paired_difference

    a = torch.tensor([1, 1, 1, 0] * 25)
    b = torch.tensor([1, 1, 0, 0] * 25)
    p, se = accuracy_se(a)
    assert p == 0.75 and se == pytest.approx((0.75 * 0.25 / 100) ** 0.5)
    d, d_se = paired_difference(a, b)
    assert d == pytest.approx(0.25) and d_se == pytest.approx(float(torch.tensor([0, 0, 1, 0] * 25).double().std()) / 10)
    assert paired_difference(a, a) == (0.0, 0.0)


def test_linear_probe_readout_kw_reaches_both_sides():
    """``readout_kw`` (here the ridge alpha grid) is used for the LSM and the raw-event readout alike."""
    from snn.lsm.probe import linear_probe

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 80, 2 * 22 * 22, generator=g) < 0.05).to(torch.uint8)
    y = torch.arange(80) % 2
    data = (x[:, :60], y[:60], x[:, 60:], y[60:])
    r = linear_probe(data, 30, dataset="event-digits", n_bins=2, readout_kw=dict(alphas=(0.25,)))
    assert r["lsm_alpha"] == 0.25 and r["raw_alpha"] == 0.25 and r["readout_kw"] == {"alphas": (0.25,)}
    d = linear_probe(data, 30, dataset="event-digits", n_bins=2)
    assert d["lsm_alpha"] in RidgeReadout.ALPHAS and d["raw_alpha"] in RidgeReadout.ALPHAS


def test_reservoir_presets():
    """``reservoir_for`` starts from a named preset; keyword arguments override it; a bad name is an error."""
    from snn.lsm.probe import reservoir_for

    assert reservoir_for("event-digits", 20).config["input_fields"] == "smooth"
    r = reservoir_for("event-digits", 20, preset="retinotopic", input_radius=2.0)
    assert (r.config["input_fields"], r.config["tau"], r.config["input_radius"]) == ("local", 3.0, 2.0)
    with pytest.raises(ValueError, match="preset 'cortex'.*retinotopic"):
        reservoir_for("event-digits", 20, preset="cortex")
