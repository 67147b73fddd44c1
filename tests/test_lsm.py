"""Liquid state machine: Dale's law, sparsity, seeding, scaling, calibration, simulation paths, bad inputs."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn.lsm import LiquidStateMachine, ResistiveMemory
from snn.lsm import connectivity as C
from snn.lsm.synapses import SynapseMatrix


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")



def _lsm(**kw):
    base = dict(n_inputs=20, n_neurons=200, seed=3)
    base.update(kw)
    return LiquidStateMachine(base.pop("n_inputs"), **base)


@pytest.mark.parametrize("connectivity", ["random", "distance"])
def test_dale_law_and_sparsity(connectivity):
    lsm = _lsm(connectivity=connectivity, p_rec=0.1, frac_exc=0.8)
    w, exc = lsm.w_rec, lsm.exc
    assert int(exc.sum()) == 160
    assert (w[exc] >= 0).all() and (w[~exc] <= 0).all()  # rows = presynaptic neuron
    assert (w.diagonal() == 0).all()
    assert ((w != 0) == lsm.mask_rec).all()
    assert lsm.stats()["dale_violations"] == 0
    density = float(lsm.mask_rec.float().mean())
    if connectivity == "random":
        assert abs(density - 0.1) < 0.01
    else:  # Maass: probability falls with distance, so most connections are short
        pos = C.grid_positions(200)
        d = torch.cdist(pos, pos)[lsm.mask_rec]
        assert 0 < density < 0.3 and float(d.mean()) < float(torch.cdist(pos, pos).mean())


def test_same_seed_same_reservoir():
    a, b, c = _lsm(seed=5), _lsm(seed=5), _lsm(seed=6)
    assert torch.equal(a.w_rec, b.w_rec) and torch.equal(a.w_in, b.w_in)
    assert not torch.equal(a.w_rec, c.w_rec)
    x = (torch.rand(12, 4, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    assert torch.equal(a(x), b(x))
    da, db = _lsm(seed=5, device_model=ResistiveMemory()), _lsm(seed=5, device_model=ResistiveMemory())
    assert torch.equal(da.w_rec, db.w_rec)


def test_spectral_radius_scaling():
    lsm = _lsm(spectral_radius=0.9)
    assert abs(C.spectral_radius(lsm.w_rec) - 0.9) < 1e-3


def test_simulation_shapes_features_and_paths():
    x = (torch.rand(15, 3, 20, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    lsm = _lsm(input_scale=6.0)
    feats, spikes = lsm.run(x, n_bins=3, features="both", record=True)
    assert spikes.shape == (15, 3, 200) and feats.shape == (3, 2 * 3 * 200)
    assert spikes.sum() > 0
    counts = feats[:, :600].reshape(3, 3, 200)  # [B, bin, N]
    assert torch.equal(counts.sum(1), spikes.float().sum(0))
    # every simulation path gives the same spikes: the event-driven C kernel, the torch step loop with the
    # inline step or the ops backend, dense or sparse recurrent matmuls
    paths = [dict(engine="event"), dict(engine="torch"), dict(engine="torch", backend="torch"),
             dict(engine="torch", recurrent="sparse")]
    runs = [_lsm(input_scale=6.0, **kw) for kw in paths]
    assert [r.engine for r in runs] == ["event", "torch", "torch", "torch"]
    for r in runs:
        other, sp = r.run(x, n_bins=3, features="both", record=True)
        assert torch.equal(sp, spikes) and torch.allclose(other, feats, atol=1e-5)
    assert lsm.features(x, batch_size=2).shape == (3, 1200)



def test_all_features_add_the_membrane_potential_at_each_bin_end():
    x = (torch.rand(15, 3, 20, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    lsm = _lsm(input_scale=6.0, tau=5.0)
    assert lsm.engine == "event"
    both, spikes = lsm.run(x, n_bins=3, features="both", record=True)
    feats = lsm.run(x, n_bins=3, features="all")[0]
    torch_feats = _lsm(input_scale=6.0, tau=5.0, engine="torch").run(x, n_bins=3, features="all")[0]
    assert torch.allclose(feats, torch_feats, atol=1e-5)  # the event kernel's voltage output = the torch engine's
    assert feats.shape == (3, 3 * 3 * 200) and torch.allclose(feats[:, :1200], both, atol=1e-5)
    # the equations of the module docstring, step by step
    v, s, ends = torch.zeros(3, 200), torch.zeros(3, 200), []
    for t in range(15):
        h = v - v / lsm.tau + x[t] @ lsm.w_in + s @ lsm.w_rec
        s = (h >= lsm.v_threshold).float()
        v = h * (1 - s)
        if t in (4, 9, 14):
            ends.append(v)
    assert torch.equal(s.to(torch.uint8), spikes[-1])
    expected = torch.stack(ends, 1).reshape(3, -1)  # [B, bin·N]
    assert torch.allclose(feats[:, 1200:], expected, atol=1e-4) and expected.abs().sum() > 0

def test_retinotopic_input_is_local():
    lsm = LiquidStateMachine(2 * 10 * 10, 50, input_shape=(2, 10, 10), input_radius=2.0, p_in=1.0, seed=0)
    conn = (lsm.w_in != 0).reshape(2, 10, 10, 50)
    for j in range(50):
        ys, xs = torch.nonzero(conn[0, :, :, j], as_tuple=True)
        assert len(ys) > 0 and (ys.max() - ys.min()) <= 4 and (xs.max() - xs.min()) <= 4
    assert (lsm.w_in >= 0).all()



def _neighbour_correlation(w_in: torch.Tensor, shape) -> float:
    """Mean correlation of the weights of horizontally adjacent pixels, over neurons and channels."""
    f = w_in.T.reshape(-1, *shape)
    a, b = f[..., :, :-1].flatten(), f[..., :, 1:].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_smooth_input_fields_are_dense_mixed_sign_unit_norm_and_smooth():
    shape = (2, 12, 12)
    w = C.smooth_input_fields(shape, 64, 1.5, torch.Generator().manual_seed(0))
    assert w.shape == (2 * 12 * 12, 64)
    assert torch.allclose(w.norm(dim=0), torch.ones(64), atol=1e-5)
    assert (w > 0).float().mean().item() == pytest.approx(0.5, abs=0.1)  # mixed sign, balanced
    assert _neighbour_correlation(w, shape) > 0.6  # blurred: neighbouring pixels move together
    white = C.smooth_input_fields(shape, 64, 0.0, torch.Generator().manual_seed(0))
    assert abs(_neighbour_correlation(white, shape)) < 0.1
    with pytest.raises(ValueError, match="smoothing"):
        C.smooth_input_fields(shape, 4, -1.0, torch.Generator())
    with pytest.raises(ValueError, match="envelope"):
        C.smooth_input_fields(shape, 4, 1.0, torch.Generator(), envelope=0.0)


def test_smooth_input_field_envelope_is_local():
    """With an envelope, a field's weight mass sits within a few envelope widths of one centre."""
    shape = (2, 30, 30)
    w = C.smooth_input_fields(shape, 50, 1.0, torch.Generator().manual_seed(1), envelope=3.0)
    mass = w.T.reshape(50, 2, 30, 30).pow(2).sum(1)  # [neuron, H, W], total 1 per neuron
    ys = torch.arange(30.0)
    cy = (mass.sum(2) * ys).sum(1)  # centre of mass per neuron
    cx = (mass.sum(1) * ys).sum(1)
    d2 = (ys[None, :, None] - cy[:, None, None]) ** 2 + (ys[None, None, :] - cx[:, None, None]) ** 2
    assert torch.allclose(mass.sum((1, 2)), torch.ones(50), atol=1e-5)
    assert (mass * (d2 <= 36.0)).sum((1, 2)).min() > 0.9  # > 90 % of each field within 2 envelopes
    assert ((cy.max() - cy.min()) > 10) and ((cx.max() - cx.min()) > 10)  # centres spread over the sensor


def test_smooth_input_reservoir():
    shape = (2, 6, 6)
    mk = lambda **kw: LiquidStateMachine(72, 40, input_shape=shape, input_fields="smooth", input_scale=4.0,  # noqa: E731
                                         seed=3, **kw)
    lsm = mk()
    assert lsm.stats()["in_density"] == 1.0 and lsm.config["input_fields"] == "smooth"
    assert torch.allclose(lsm.w_in.norm(dim=0), torch.full((40,), 4.0), atol=1e-4)  # input_scale = field norm
    assert torch.equal(lsm.w_in, mk().w_in)  # one seed, one reservoir
    x = (torch.rand(12, 5, 72, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    ev, sp_ev = mk(engine="event").run(x, record=True)
    to, sp_to = mk(engine="torch").run(x, record=True)
    assert torch.equal(sp_ev, sp_to) and torch.allclose(ev, to, atol=1e-5) and sp_ev.any()
    with pytest.raises(ValueError, match="needs input_shape"):
        LiquidStateMachine(72, 40, input_fields="smooth")
    with pytest.raises(ValueError, match="input_fields"):
        LiquidStateMachine(72, 40, input_shape=shape, input_fields="gabor")

def test_rate_calibration():
    x = (torch.rand(20, 8, 20, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    lsm = _lsm()
    lsm.calibrate(x, target_rate=0.1)
    rate = float(lsm(x).mean())
    assert abs(rate - 0.1) < 0.03


def test_device_model_realises_weights():
    ideal = _lsm()
    dev = _lsm(device_model=ResistiveMemory(read_noise=0.0))
    assert ((dev.w_rec != 0) <= ideal.mask_rec).all()  # no device where no synapse
    rel = (dev.w_rec - ideal.w_rec).norm() / ideal.w_rec.norm()
    assert 0 < rel < 0.5
    sw = _lsm(device_model=ResistiveMemory(), device_weights="switching")
    assert sw.stats()["dale_violations"] == 0  # pairs are oriented by the presynaptic type


def test_sparse_and_dense_synapses_agree():
    w = torch.randn(300, 400) * (torch.rand(300, 400) < 0.02)
    u = (torch.rand(7, 300) < 0.2).float()
    d, s = SynapseMatrix(w, mode="dense"), SynapseMatrix(w, mode="sparse")
    assert torch.allclose(d(u), s(u), atol=1e-5)
    assert SynapseMatrix(w).mode == "sparse" and SynapseMatrix(torch.randn(300, 400)).mode == "dense"


def test_bad_inputs():
    with pytest.raises(ValueError, match="connectivity"):
        _lsm(connectivity="ring")
    with pytest.raises(ValueError, match="frac_exc"):
        _lsm(frac_exc=1.5)
    with pytest.raises(ValueError, match="n_inputs"):
        LiquidStateMachine(0, 10)
    with pytest.raises(ValueError, match="input_shape"):
        LiquidStateMachine(10, 10, input_shape=(2, 3, 3))
    with pytest.raises(TypeError, match="device_model"):
        _lsm(device_model="rram")
    with pytest.raises(ValueError, match="engine"):
        _lsm(engine="gpu")
    with pytest.raises(ValueError, match="read noise|read_noise"):
        _lsm(engine="event", device_model=ResistiveMemory())
    lsm = _lsm()
    with pytest.raises(ValueError, match=r"\[T, B, n_inputs=20\]"):
        lsm(torch.zeros(5, 20))
    with pytest.raises(ValueError, match="NaN"):
        lsm(torch.full((2, 1, 20), float("nan")))
    with pytest.raises(ValueError, match="n_bins"):
        lsm.run(torch.zeros(2, 1, 20), n_bins=5)
    with pytest.raises(ValueError, match="target_rate"):
        lsm.calibrate(torch.zeros(2, 1, 20), 1.5)


def test_event_kernel_without_compiler(monkeypatch, tmp_path):
    from snn.lsm import event_kernel as K

    monkeypatch.setattr(K, "_libs", {})
    monkeypatch.setattr(K, "_errors", {})
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))  # no cached build
    monkeypatch.setenv("CC", "no-such-cc")
    assert not K.available()
    assert _lsm().engine == "torch"  # 'auto' says which engine it took
    with pytest.raises(RuntimeError, match="no C compiler"):
        _lsm(engine="event")


def test_event_kernel_paths_agree():
    # the AVX-512 paths (where this CPU has them) and the portable scalar path, with W_in as CSR rows or as a
    # dense matrix, give the torch engine's spikes and membrane potentials, for event counts > 1 and sizes that
    # are not multiples of the 16-lane vectors; NaN input is an error
    import numpy as np

    from snn.lsm import event_kernel as K

    lsm = _lsm(n_inputs=37, n_neurons=203, input_scale=6.0, engine="torch")
    # 35 samples: two 16-sample lane blocks and 3 single samples on the AVX-512 path; the input rate grows over
    # time, so the lane blocks both scatter (few neurons fired) and gather (most fired) their recurrent input
    rate = (0.5 * torch.linspace(0.0, 1.0, 11) ** 3)[:, None, None].expand(11, 35, 37)
    x = torch.poisson(rate, generator=torch.Generator().manual_seed(2))
    feats, ref = lsm.run(x, n_bins=2, features="all", record=True)
    ref_volts = feats[:, 4 * 203:].reshape(35, 2, 203).transpose(0, 1)
    layouts = {"csr": K.to_csr(lsm.w_in), "dense": K.to_tiles(lsm.w_in)}  # 203 neurons: 4 tiles, padded
    bins = np.repeat([0, 1], [6, 5])
    run = lambda xx, w_in, variant, **kw: K.run_event(  # noqa: E731
        xx, w_in, K.to_csr(lsm.w_rec), tau=lsm.tau, v_threshold=1.0, v_reset=0.0, gain=1.0, trace_tau=5.0,
        bin_of_t=bins, n_bins=2, variant=variant, **kw)
    for variant in ("native", "portable"):
        for layout, w_in in layouts.items():
            counts, _, volts, sp = run(x, w_in, variant, record=True, volts=True)
            assert torch.equal(sp, ref) and ref.sum() > 0, (variant, layout)
            assert torch.equal(counts.sum(0), ref.float().sum(0))
            assert torch.allclose(volts, ref_volts, atol=1e-5) and volts.abs().sum() > 0
            if variant == "native" and K.simd():
                steps = K.recurrent_steps()
                assert steps["gathered"] > 0 and steps["scattered"] > 0, steps
            assert run(x, w_in, variant)[2] is None  # no voltage output unless asked
            assert torch.equal(run(x, w_in, variant, record=True, n_threads=2)[3], ref)  # OpenMP over blocks
            x_bad = x.clone()
            x_bad[3, 2, 5] = float("inf")
            with pytest.raises(ValueError, match="NaN or Inf"):
                run(x_bad, w_in, variant)
    with pytest.raises(ValueError, match="dense w_in"):
        run(x, lsm.w_in.numpy().copy(), "native")  # row-major, not tiles
    # what the kernel would index unchecked is checked first: bins, CSR shapes and indices
    csr_in, csr_rec = layouts["csr"], K.to_csr(lsm.w_rec)
    ok = dict(tau=lsm.tau, v_threshold=1.0, v_reset=0.0, gain=1.0, trace_tau=5.0, n_bins=2)
    for bad_bins in (bins[:-1], bins + 1, bins - 1):
        with pytest.raises(ValueError, match="bin_of_t"):
            K.run_event(x, csr_in, csr_rec, bin_of_t=bad_bins, **ok)
    bad_col = (csr_rec[0], csr_rec[1].copy(), csr_rec[2])
    bad_col[1][0] = 203
    with pytest.raises(ValueError, match="column indices"):
        K.run_event(x, csr_in, bad_col, bin_of_t=bins, **ok)
    with pytest.raises(ValueError, match="row pointers"):
        K.run_event(x, K.to_csr(lsm.w_in[:30]), csr_rec, bin_of_t=bins, **ok)  # 30 input rows for 37 inputs
    with pytest.raises(ValueError, match="CSR triple"):
        K.run_event(x, csr_in, None, bin_of_t=bins, **ok)
    with pytest.raises(ValueError, match="variant"):
        K.load("fastest")


def test_event_kernel_takes_dense_input_rows_for_dense_fields():
    from snn.lsm import event_kernel as K

    sparse = _lsm(p_in=0.1, engine="event")
    dense = LiquidStateMachine(72, 40, input_shape=(2, 6, 6), input_fields="smooth", engine="event", seed=3)
    assert isinstance(K.input_layout(sparse.w_in), tuple)  # CSR triple
    tiles = K.input_layout(dense.w_in)
    assert tiles.shape == (1, 72, 64) and (tiles[0, :, :40] == dense.w_in.numpy()).all() and not tiles[0, :, 40:].any()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n_in=st.integers(1, 80), n=st.integers(1, 150), b=st.integers(1, 40), t=st.integers(1, 12),
       p_in=st.sampled_from([0.05, 0.3, 1.0]), tau=st.floats(1.0, 40.0), scale=st.floats(0.5, 12.0),
       rate=st.floats(0.05, 0.8), seed=st.integers(0, 2**16))
def test_event_kernel_matches_the_torch_reference(n_in, n, b, t, p_in, tau, scale, rate, seed):
    """Random sizes (lane blocks and single samples, sizes off the vector widths), sparse (CSR) and dense
    (tiled) input layouts: the event kernel's spikes and features are the torch engine's."""
    kw = dict(n_inputs=n_in, n_neurons=n, p_in=p_in, tau=tau, input_scale=scale, seed=seed)
    x = torch.poisson(torch.full((t, b, n_in), rate), generator=torch.Generator().manual_seed(seed))
    n_bins = 1 + seed % t
    ref_feats, ref_spikes = _lsm(engine="torch", **kw).run(x, n_bins=n_bins, features="all", record=True)
    feats, spikes = _lsm(engine="event", **kw).run(x, n_bins=n_bins, features="all", record=True)
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(feats, ref_feats, atol=1e-4)


_OOM_SCRIPT = r"""
import resource, sys
import numpy as np, torch
from snn.lsm import event_kernel as K
n, n_in, b, t = 400_000, 3, 16, 2
w_in = K.to_tiles(torch.ones(n_in, n))                        # dense tiles: 4.8 MB
rec = (np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))  # no recurrence
x = torch.ones(t, b, n_in)
K.run_event(x[:, :1], w_in, rec, tau=2.0, v_threshold=1.0, v_reset=0.0, gain=1.0, trace_tau=5.0,
            bin_of_t=np.zeros(t, np.int32), n_bins=1, n_threads=1)  # built and loaded before the limit
size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + (200 << 20), resource.RLIM_INFINITY))  # 200 MB more at most
try:  # the outputs fit (3 x 25.6 MB), the dense-input scratch (16 steps x 16 lanes x N floats = 410 MB) does not
    K.run_event(x, w_in, rec, tau=2.0, v_threshold=1.0, v_reset=0.0, gain=1.0, trace_tau=5.0,
                bin_of_t=np.zeros(t, np.int32), n_bins=1, n_threads=1)
except MemoryError as e:
    print("MemoryError:", e)
    sys.exit(0)
sys.exit(3)
"""


def test_event_kernel_out_of_memory_is_an_error_not_a_crash():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _OOM_SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "out of memory" in r.stdout and "fewer samples" in r.stdout
