"""The event-driven kernels (csrc/sparse_ops.cpp, torch.ops.snn_sparse) against their torch references, and
EventLinear / spike_linear against nn.Linear: bits identical, sums equal to rounding (exactly where every partial
sum is exact), weight gradients from the packed spikes, results independent of the thread count, clear errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn.sparse import EventLinear, kernels
from snn.sparse.linear import Choice, spike_linear

from badinput import expect_clear_error

if not kernels.available():  # pragma: no cover - depends on the build
    pytest.skip("the event-driven kernels are not built (make build)", allow_module_level=True)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([torch.float32, torch.float64])
# rows crossing the forward's row blocks (256) and the gradient's (512); columns around whole bytes and tiles
ROWS = st.sampled_from([1, 3, 17, 257, 600])
INS = st.sampled_from([1, 5, 8, 9, 63, 130])
OUTS = st.sampled_from([1, 7, 32, 64, 65, 200])


@pytest.fixture(autouse=True)
def _fixed_crossover(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_SPARSE_CROSSOVER", "0.3")      # no calibration in these tests
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))


def _spikes(R, K, density, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(R, K, generator=g) < density).to(dtype)


def _dyadic(shape, seed, dtype=torch.float32):
    """Values k/16, |k| <= 8: every sum of a few thousand is exact in float32."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(-8, 9, shape, generator=g) / 16).to(dtype)


@SETTINGS
@given(R=ROWS, K=INS, density=st.sampled_from([0.0, 0.05, 0.5, 1.0]), dtype=DTYPES, seed=st.integers(0, 99))
def test_pack_bits_equal_reference_and_round_trip(R, K, density, dtype, seed):
    x = _spikes(R, K, density, dtype, seed)
    bits, nnz, binary = kernels.pack_bits(x)
    ref_bits, ref_nnz, ref_binary = kernels.pack_bits_reference(x)
    assert torch.equal(bits, ref_bits) and nnz == ref_nnz == int((x != 0).sum()) and binary and ref_binary
    assert bits.shape == (R, (K + 7) // 8) and bits.dtype == torch.uint8
    assert torch.equal(kernels.unpack_bits(bits, K, dtype), x)
    assert torch.equal(kernels.unpack_bits_reference(bits, K, dtype), x)


def test_pack_bits_says_when_the_input_is_not_binary():
    x = torch.zeros(3, 20)
    x[1, 4] = 0.5
    bits, nnz, binary = kernels.pack_bits(x)
    assert not binary and nnz == 1 and bits[1, 0] == 1 << 4
    x[1, 4] = float("nan")                 # NaN is non-zero and not binary
    assert kernels.pack_bits(x)[1:] == (1, False)


@SETTINGS
@given(R=ROWS, K=INS, N=OUTS, density=st.sampled_from([0.0, 0.1, 0.6]), bias=st.booleans(), dtype=DTYPES,
       seed=st.integers(0, 99))
def test_event_linear_exact_on_dyadic_weights(R, K, N, density, bias, dtype, seed):
    x = _spikes(R, K, density, dtype, seed)
    w, b = _dyadic((N, K), seed, dtype), _dyadic((N,), seed + 1, dtype) if bias else None
    y, bits, nnz, binary = kernels.event_linear(x, kernels.tile_weight(w), N, b, pack=True)
    assert torch.equal(y, nn.functional.linear(x, w, b))
    assert torch.equal(bits, kernels.pack_bits_reference(x)[0]) and nnz == int(x.sum()) and binary


@SETTINGS
@given(R=ROWS, K=INS, N=OUTS, dtype=DTYPES, seed=st.integers(0, 99))
def test_event_linear_graded_input_close_to_matmul(R, K, N, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(R, K, generator=g, dtype=dtype) * (torch.rand(R, K, generator=g) < 0.2)
    w, b = torch.randn(N, K, generator=g, dtype=dtype), torch.randn(N, generator=g, dtype=dtype)
    y, _, _, binary = kernels.event_linear(x, kernels.tile_weight(w), N, b, pack=True)
    assert not binary or not bool((x != 0).any())
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(y, x @ w.t() + b, rtol=tol, atol=tol * K)


@SETTINGS
@given(R=ROWS, K=INS, N=OUTS, graded=st.booleans(), seed=st.integers(0, 99))
def test_event_linear_int8_weights_sum_exactly_in_int32(R, K, N, graded, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(R, K, generator=g) < 0.3).float()
    if graded:
        x = x * torch.randint(0, 256, (R, K), generator=g)
    w = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
    y = kernels.event_linear(x, kernels.tile_weight(w), N)[0]
    assert y.dtype == torch.int32
    assert torch.equal(y.long(), x.long() @ w.long().t())


@SETTINGS
@given(R=ROWS, K=INS, N=OUTS, density=st.sampled_from([0.0, 0.1, 0.7]), dtype=DTYPES, seed=st.integers(0, 99))
def test_event_grad_weight_from_packed_spikes(R, K, N, density, dtype, seed):
    x = _spikes(R, K, density, dtype, seed)
    g = _dyadic((R, N), seed, dtype)
    gw = kernels.event_grad_weight(kernels.pack_bits(x)[0], K, g)
    assert gw.shape == (N, K) and torch.equal(gw, g.t() @ x)      # dyadic: exact in any order
    gr = torch.randn(R, N, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(kernels.event_grad_weight(kernels.pack_bits(x)[0], K, gr), gr.t() @ x, rtol=tol,
                               atol=tol * R)


def test_results_do_not_depend_on_the_thread_count():
    x = _spikes(1500, 300, 0.1, torch.float32, 0)
    w = torch.randn(70, 300, generator=torch.Generator().manual_seed(1))
    g = torch.randn(1500, 70, generator=torch.Generator().manual_seed(2))
    wt, bits = kernels.tile_weight(w), kernels.pack_bits(x)[0]
    n = torch.get_num_threads()
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out.append((kernels.event_linear(x, wt, 70)[0], kernels.event_grad_weight(bits, 300, g)))
    torch.set_num_threads(n)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


@pytest.mark.parametrize("mode,grad_mode", [("event", "event"), ("event", "dense"), ("dense", "event"),
                                            ("auto", "auto")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_event_linear_layer_against_nn_linear(mode, grad_mode, dtype):
    torch.manual_seed(0)
    ev = EventLinear(37, 23, mode=mode, grad_mode=grad_mode, step_mode="m").to(dtype)
    ref = nn.Linear(37, 23).to(dtype)
    ref.load_state_dict(ev.state_dict())
    with torch.no_grad():
        for p in (ev.weight, ev.bias):
            p.copy_(_dyadic(p.shape, 3, dtype))
            ref.load_state_dict(ev.state_dict())
    x = _spikes(6 * 4, 37, 0.15, dtype, 5).reshape(6, 4, 37).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y, yr = ev(x), ref(xr)
    assert torch.equal(y, yr)
    g = _dyadic(y.shape, 7, dtype)
    y.backward(g)
    yr.backward(g)
    for a, b in ((x.grad, xr.grad), (ev.weight.grad, ref.weight.grad), (ev.bias.grad, ref.bias.grad)):
        assert torch.equal(a, b)
    assert ev.last_path == ("dense" if mode == "dense" else "event")
    assert ev.choice.last_grad_path == ("dense" if grad_mode == "dense" else "event")


def test_auto_follows_the_crossover_rate():
    x = _spikes(40, 64, 0.1, torch.float32, 0)
    for rate, path in ((0.0, "dense"), (0.5, "event")):
        lay = EventLinear(64, 8, mode="auto", crossover=rate)
        lay(x)
        assert lay.last_path == path and lay.last_rate == pytest.approx(float(x.mean()))


def test_binary_input_is_saved_as_bits_and_graded_input_as_itself():
    lay = EventLinear(200, 10, mode="event", grad_mode="auto")
    saved = []

    def pack(t):
        saved.append((t.dtype, tuple(t.shape)))
        return t

    x = _spikes(30, 200, 0.1, torch.float32, 0).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lay(x).sum().backward()
    assert (torch.uint8, (30, 25)) in saved and (torch.float32, (30, 200)) not in saved
    saved.clear()
    lay.zero_grad()
    xg = (x.detach() * 0.5).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lay(xg).sum().backward()
    assert (torch.float32, (30, 200)) in saved and all(d != torch.uint8 for d, _ in saved)
    torch.testing.assert_close(lay.weight.grad, xg.detach().sum(0).expand(10, 200))


def test_nothing_is_saved_without_a_gradient():
    lay = EventLinear(16, 4, mode="event")
    lay.weight.requires_grad_(False)
    lay.bias.requires_grad_(False)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        lay(_spikes(5, 16, 0.2, torch.float32, 0).requires_grad_())
    assert all(t.dtype != torch.uint8 for t in saved) and not any(t.shape == (5, 16) for t in saved)


def test_explicit_event_path_where_it_cannot_run_is_an_error_naming_the_layer():
    half = EventLinear(8, 4, mode="event").half()
    expect_clear_error(lambda: half(torch.ones(2, 8, dtype=torch.float16)), RuntimeError, "EventLinear(8 -> 4)",
                       "float32/float64", "mode='event'")
    lay = EventLinear(8, 4, mode="dense", grad_mode="event")
    graded = torch.full((2, 8), 0.5, requires_grad=True)
    expect_clear_error(lambda: lay(graded), RuntimeError, "EventLinear(8 -> 4)", "grad_mode='event'", "not binary")
    expect_clear_error(lambda: EventLinear(8, 4, mode="sparse"), ValueError, "EventLinear(8 -> 4)", "mode",
                       "'dense', 'event', 'auto'")
    # auto never refuses: it runs dense where the event path cannot
    auto = EventLinear(8, 4, mode="auto", crossover=1.0).half()
    auto(torch.ones(2, 8, dtype=torch.float16))
    assert auto.last_path == "dense"


def test_spike_linear_folds_leading_dimensions():
    w, b = torch.randn(5, 6), torch.randn(5)
    x = _spikes(2 * 3 * 4, 6, 0.5, torch.float32, 1).reshape(2, 3, 4, 6)
    y = spike_linear(x, w, b, Choice("test", "event"))
    assert y.shape == (2, 3, 4, 5)
    torch.testing.assert_close(y, x @ w.t() + b)


@SETTINGS
@given(R=st.sampled_from([1, 3]), C=st.sampled_from([1, 3, 17]), O=st.sampled_from([1, 5, 64, 70]),
       H=st.sampled_from([1, 4, 9]), W=st.sampled_from([1, 6]), k=st.sampled_from([(1, 1), (3, 3), (3, 1), (5, 5)]),
       pad=st.sampled_from([(0, 0), (1, 1), (2, 0)]), density=st.sampled_from([0.0, 0.1, 0.5]), bias=st.booleans(),
       dtype=DTYPES, seed=st.integers(0, 99))
def test_event_conv2d_exact_on_dyadic_weights(R, C, O, H, W, k, pad, density, bias, dtype, seed):
    if H + 2 * pad[0] < k[0] or W + 2 * pad[1] < k[1]:
        return
    x = _spikes(R * C * H * W, 1, density, dtype, seed).reshape(R, C, H, W)
    w, b = _dyadic((O, C, *k), seed, dtype), _dyadic((O,), seed + 1, dtype) if bias else None
    wtile = kernels.tile_weight(w.reshape(O, -1))
    y = kernels.library().event_conv2d(x, wtile, O, *k, b, *pad)
    assert torch.equal(y.permute(0, 3, 1, 2), nn.functional.conv2d(x, w, b, 1, pad))
    graded = x * _dyadic(x.shape, seed + 2, dtype)
    y = kernels.library().event_conv2d(graded, wtile, O, *k, b, *pad)
    assert torch.equal(y.permute(0, 3, 1, 2), nn.functional.conv2d(graded, w, b, 1, pad))
