"""Spike-sparse inference: SparseNet (dense / sparse / auto per layer, exact against the dense model, the choice
said and logged, outputs never overwritten by a later call), Int8Net (equal to the Loihi emulator), the
crossover calibration and its cache, clear errors naming the layer."""
from __future__ import annotations

import json
import logging
import os

import pytest
import torch
import torch.nn as nn

import snn
from snn import models
from snn.export.loihi import LoweringError, emulate_fixed, lower, quantize
from snn.sparse import Int8Net, SparseNet, calibrate, crossover, kernels
from snn.sparse import calibration as cross

from badinput import expect_clear_error
from dyadic_layers import dyadic_

if not kernels.available():  # pragma: no cover - depends on the build
    pytest.skip("the event-driven kernels are not built (make build)", allow_module_level=True)


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SNN_SPARSE_CROSSOVER", "0.3")
    monkeypatch.setattr(cross, "_memo", {})


def _dyadic_mlp(hidden=(48, 40), seed=0):
    """The mlp preset on binary grids (tests/dyadic_layers.py): every potential is exact in float32 whatever the
    order of the sums, so the sparse path must give the dense path's spikes bit for bit."""
    torch.manual_seed(seed)
    return dyadic_(models.mlp(in_shape=(1, 6, 6), hidden=hidden, num_classes=10), seed).eval()


def _spikes(T, B, density, seed=1):
    return (torch.rand(T, B, 1, 6, 6, generator=torch.Generator().manual_seed(seed)) < density).float()


def _dense_outputs(net, x):
    """Every layer's output of the model itself."""
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.clone())) for m in net]
    snn.reset(net)
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return outs


@pytest.mark.parametrize("mode", ["dense", "sparse", "auto"])
@pytest.mark.parametrize("batch", [1, 5])
def test_every_path_gives_the_dense_spikes(mode, batch):
    net = _dyadic_mlp()
    x = _spikes(9, batch, 0.3)
    ref = _dense_outputs(net, x)
    sparse = SparseNet(net, mode)
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.clone())) for m in sparse.net]
    out = sparse(x)
    for h in hooks:
        h.remove()
    assert torch.equal(out, ref[-1])
    for a, b in zip(outs, ref):           # every layer: currents and spikes identical
        assert torch.equal(a, b)
    assert sum(float(o.sum()) > 0 for o in ref[2:5:2]) == 2   # both hidden layers fire
    paths = sparse.paths()
    assert set(paths) == {"1", "3", "5"}
    want = {"dense": "dense", "sparse": "sparse"}.get(mode)
    for name, p in paths.items():
        assert p["mode"] == mode and p["path"] in ("dense", "sparse")
        if want:
            assert p["path"] == want
        else:                              # auto: sparse exactly where the measured rate is below 0.3
            assert p["path"] == ("sparse" if p["rate"] < 0.3 else "dense")


def test_auto_logs_its_choice_and_per_layer_modes(caplog):
    net = _dyadic_mlp()
    x = _spikes(8, 2, 0.6)
    sparse = SparseNet(net, {"1": "dense", "5": "sparse"})
    with caplog.at_level(logging.INFO, logger="snn.sparse"):
        out = sparse(x)
    p = sparse.paths()
    assert p["1"]["path"] == "dense" and p["5"]["path"] == "sparse" and p["3"]["mode"] == "auto"
    assert any("layer '3'" in r.getMessage() and "firing rate" in r.getMessage() for r in caplog.records)
    assert torch.equal(out, _dense_outputs(net, x)[-1])


def test_outputs_of_earlier_calls_are_never_overwritten():
    sparse = SparseNet(_dyadic_mlp(), "sparse")
    xa, xb = _spikes(6, 3, 0.3, seed=1), _spikes(6, 3, 0.3, seed=2)
    a = sparse(xa)
    a_copy = a.clone()
    b = sparse(xb)
    assert torch.equal(a, a_copy) and torch.equal(sparse(xa), a_copy)
    assert torch.equal(b, SparseNet(_dyadic_mlp(), "dense")(xb)) and not torch.equal(a, b)
    assert a.data_ptr() != b.data_ptr()


def test_the_trained_model_is_not_changed():
    net = _dyadic_mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    SparseNet(net, "sparse")(_spikes(4, 2, 0.3))
    assert type(net[1]) is snn.layers.Linear
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def _dyadic_csnn(seed=0):
    """The csnn preset on binary grids, BatchNorm folding exact (tests/dyadic_layers.py)."""
    torch.manual_seed(seed)
    return dyadic_(models.csnn(in_shape=(1, 8, 8), channels=(4, 6)), seed).eval()


@pytest.mark.parametrize("mode", ["dense", "sparse", "auto"])
def test_csnn_convolutions_and_readout_on_every_path(mode):
    net = _dyadic_csnn()
    x = (torch.rand(5, 2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.clone())) for m in net]
    snn.reset(net)
    with torch.no_grad():
        ref = net(x)
    for h in hooks:
        h.remove()
    assert float(outs[2].mean()) > 0 and float(outs[6].mean()) > 0      # both spiking layers fire
    sparse = SparseNet(net, mode)
    assert torch.equal(sparse(x), ref)
    p = sparse.paths()
    assert set(p) == {"0", "4", "9"}
    if mode != "auto":
        assert all(v["path"] == mode for v in p.values())
    assert isinstance(sparse.net[1], nn.Identity)                      # BatchNorm folded into the conv


def test_csnn_with_float_weights_agrees_to_rounding():
    torch.manual_seed(0)
    net = models.csnn(in_shape=(1, 8, 8), channels=(4, 6)).eval()
    x = torch.rand(4, 2, 1, 8, 8)
    snn.reset(net)
    with torch.no_grad():
        ref = net(x)
    torch.testing.assert_close(SparseNet(net, "auto", crossover=1.0)(x), ref, rtol=1e-4, atol=1e-4)


def test_sparse_where_there_is_no_sparse_path_is_an_error_naming_the_layer():
    net = models.csnn(in_shape=(1, 8, 8), channels=(4, 6))
    expect_clear_error(lambda: SparseNet(net, {"3": "sparse"}), ValueError, "layer '3'", "MaxPool2d", "sparse path")
    strided = nn.Sequential(snn.layers.Conv2d(1, 2, 3, stride=2, step_mode="m"), snn.neuron.LIF(step_mode="m"))
    expect_clear_error(lambda: SparseNet(strided, {"0": "sparse"}), ValueError, "layer '0'", "stride")
    ws = models.csnn(in_shape=(1, 8, 8), channels=(4, 6), norm="ws")
    expect_clear_error(lambda: SparseNet(ws, {"0": "sparse"}), ValueError, "layer '0'", "ScaledWSConv2d")
    expect_clear_error(lambda: SparseNet(net, {"nope": "dense"}), KeyError, "'nope'", "layers")
    expect_clear_error(lambda: SparseNet(net, {"9": "fast"}), ValueError, "layer '9'", "'dense', 'sparse', 'auto'")
    expect_clear_error(lambda: SparseNet(net, "event"), ValueError, "mode", "'dense', 'sparse', 'auto'")
    half = _dyadic_mlp().half()
    expect_clear_error(lambda: SparseNet(half, "sparse"), RuntimeError, "layer '1'", "float32/float64")
    sparse = SparseNet(half, "auto")                       # auto runs dense where sparse cannot
    sparse(_spikes(3, 1, 0.3).half())
    assert all(p["path"] == "dense" for p in sparse.paths().values())


# ------------------------------------------------------------------------------------------------ int8
def _loihi_mlp(seed=0):
    torch.manual_seed(seed)
    net = models.mlp(in_shape=(1, 6, 6), hidden=(40, 30), num_classes=5, init_gain=3.0)
    return net.eval()


@pytest.mark.parametrize("input_bits", [0, 8])
@pytest.mark.parametrize("mode", ["dense", "sparse", "auto"])
def test_int8_equals_the_loihi_emulator(mode, input_bits):
    net = _loihi_mlp()
    fixed = quantize(lower(net, (1, 6, 6), input_bits=input_bits))
    x = _spikes(12, 3, 0.3) if input_bits == 0 else torch.rand(12, 3, 1, 6, 6)
    ref = emulate_fixed(fixed, x)
    out = Int8Net(fixed, mode)(x)
    assert out.shape == ref.shape == (3, 5) and out.dtype == ref.dtype
    assert torch.equal(out, ref)
    hidden_ref = emulate_fixed(fixed, x, all_layers=True)
    assert float(hidden_ref[0].sum()) > 0 and float(hidden_ref[1].sum()) > 0


def test_int8_from_model_and_its_paths():
    net = _loihi_mlp(1)
    x = _spikes(10, 2, 0.2)
    i8 = Int8Net.from_model(net, (1, 6, 6), mode={"readout": "sparse"})
    fixed = quantize(lower(net, (1, 6, 6)))
    a = i8(x)
    a_copy, x2 = a.clone(), _spikes(10, 2, 0.3, seed=7)
    b = i8(x2)                                                # a second call leaves the first output alone
    assert torch.equal(a, a_copy) and torch.equal(a, emulate_fixed(fixed, x))
    assert torch.equal(b, emulate_fixed(fixed, x2))
    p = i8.paths()
    assert p["readout"]["path"] == "sparse" and all(v["mode"] == "auto" for k, v in p.items() if k != "readout")


def test_int8_refuses_what_loihi_cannot_run_naming_the_layer():
    csnn = models.csnn(in_shape=(1, 8, 8), channels=(4, 6))
    with pytest.raises(LoweringError) as info:
        Int8Net.from_model(csnn, (1, 8, 8))
    assert "MaxPool2d" in str(info.value)
    rec = nn.Sequential(snn.layers.Flatten(step_mode="m"),
                        snn.recurrent.Recurrent(36, 8, "lif", step_mode="m"))
    expect_clear_error(lambda: Int8Net.from_model(rec, (1, 6, 6)), ValueError, "layer '1'", "recurrent")
    fixed = quantize(lower(_loihi_mlp(), (1, 6, 6)))
    expect_clear_error(lambda: Int8Net(fixed, {"nope": "dense"}), KeyError, "nope", "layers")
    expect_clear_error(lambda: Int8Net(lower(_loihi_mlp(), (1, 6, 6))), TypeError, "FixedNet", "from_model")
    expect_clear_error(lambda: Int8Net(fixed, "dense")(torch.rand(3, 2, 1, 6, 6)), ValueError, "binary")


# ------------------------------------------------------------------------------------------------ crossover
def test_calibration_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.delenv("SNN_SPARSE_CROSSOVER")
    res = calibrate(rows=(4, 64), features=32, densities=(0.05, 0.5), repeat=1)
    assert set(res["forward"]) == {4, 64} and all(0 < v <= 0.5 for v in res["forward"].values())
    path = os.path.join(str(tmp_path), "sparse_crossover.json")
    with open(path) as f:
        table = json.load(f)
    assert res["key"] in table and "times" in table[res["key"]]
    monkeypatch.setattr(cross, "_memo", {})
    monkeypatch.setattr(cross, "calibrate", lambda **kw: pytest.fail("measured again although cached"))
    lo, hi = res["forward"][4], res["forward"][64]
    assert crossover(4) == pytest.approx(lo) and crossover(64) == pytest.approx(hi)
    assert crossover(1) == pytest.approx(lo) and crossover(10 ** 6) == pytest.approx(hi)
    assert min(lo, hi) - 1e-12 <= crossover(16) <= max(lo, hi) + 1e-12    # interpolated in log rows


def test_crossover_environment_override_and_bad_values(monkeypatch):
    monkeypatch.setenv("SNN_SPARSE_CROSSOVER", "0.07")
    assert crossover(10) == 0.07
    monkeypatch.setenv("SNN_SPARSE_CROSSOVER", "2")
    expect_clear_error(lambda: crossover(10), ValueError, "SNN_SPARSE_CROSSOVER", "[0.0, 1.0]")
    expect_clear_error(lambda: crossover(10, "backward"), ValueError, "kind", "forward")
    expect_clear_error(lambda: calibrate(features=0), ValueError, "features")
