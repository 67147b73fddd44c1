"""The cpp backend (snn._C, csrc/cpu/scan.h over the built-in step functors) against the torch reference scan
(snn.functional.scan).

Spikes must be identical, states and gradients within 1e-5 (float32) / 1e-10 (float64);
gradcheck in float64 (PLIF decay gradient included); clear errors for bad input.
"""
from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snn.ops as ops
import snn.surrogate as sg
from snn.ops import cpp_backend

if not cpp_backend.is_available():  # pragma: no cover
    pytest.skip("snn._C is not built (make build)", allow_module_level=True)


class _Backend:
    """``ops.<family>_multistep`` on one backend: ``C.lif_multistep(...)`` is
    ``ops.lif_multistep(..., backend='cpp')``."""

    def __init__(self, name):
        self.NAME = name

    def __getattr__(self, fn):
        return functools.partial(getattr(ops, fn), backend=self.NAME)


C, R = _Backend("cpp"), _Backend("torch")

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shape(draw_t, draw_n):
    return (draw_t,) + draw_n


shapes = st.tuples(st.integers(1, 9), st.sampled_from([(1,), (7,), (3, 5), (2, 3, 11), (515,), (1031,), (0,)]))
surrogates = st.builds(lambda k, a: sg.KINDS[k](a), st.integers(0, 4), st.floats(0.5, 8.0))
v_resets = st.sampled_from([0.0, None, -0.4])


def _close(a, b, dtype, what):
    tol = TOL[dtype]
    torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def _inputs(shape, dtype, seed, noncontig=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).mul_(1.2).to(dtype)
    if noncontig and x.dim() >= 2:
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    v0 = (torch.rand(shape[1:], generator=g, dtype=torch.float64) * 0.8).to(dtype)
    return x.requires_grad_(), v0.requires_grad_()


def _weights(like, seed):
    """Random output weights so every gradient path is exercised."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(like.shape, generator=g, dtype=torch.float64).to(like.dtype)


def _run_both(fn_name, inputs, params, loss_parts, dtype):
    """Forward both backends, differentiate a random weighted loss, return both result lists."""
    results = []
    for backend in (C, R):
        outs = getattr(backend, fn_name)(*inputs, **params)
        outs = [o for o in outs if o is not None]
        loss = sum((o * w).sum() for o, w in zip(outs, loss_parts(outs)))
        leaves = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else []
        results.append((outs, grads))
    return results


def _compare(results, dtype):
    (outs_c, grads_c), (outs_r, grads_r) = results
    assert torch.equal(outs_c[0], outs_r[0]), "spikes differ from the torch reference"
    for i, (a, b) in enumerate(zip(outs_c[1:], outs_r[1:])):
        _close(a, b, dtype, f"state output {i + 1}")
    for i, (a, b) in enumerate(zip(grads_c, grads_r)):
        if a is None or b is None:
            assert a is None or not a.abs().sum(), f"gradient {i}"
            continue
        _close(a, b, dtype, f"gradient {i}")


# ---------------------------------------------------------------------------------------- LIF
@SETTINGS
@given(shape=shapes, dtype=st.sampled_from([torch.float32, torch.float64]), sur=surrogates, v_reset=v_resets,
       decay_input=st.booleans(), detach=st.booleans(), plif=st.booleans(), tau=st.floats(1.0, 8.0),
       record_v=st.booleans(), noncontig=st.booleans(), strict=st.booleans(), seed=st.integers(0, 2**16))
def test_lif_matches_reference(shape, dtype, sur, v_reset, decay_input, detach, plif, tau, record_v, noncontig,
                               strict, seed):
    shape = (shape[0],) + shape[1]
    x, v0 = _inputs(shape, dtype, seed, noncontig)
    decay = torch.tensor(1.0 / tau, dtype=dtype, requires_grad=True) if plif else 1.0 / tau
    params = dict(v_threshold=0.6, v_reset=v_reset, decay_input=decay_input, detach_reset=detach, surrogate=sur,
                  record_v=record_v, strict_threshold=strict)
    inputs = (x, v0, decay)
    results = _run_both("lif_multistep", inputs, params, lambda outs: [_weights(o, seed + i)
                                                                       for i, o in enumerate(outs)], dtype)
    _compare(results, dtype)


def test_if_is_lif_with_zero_decay():
    x, v0 = _inputs((6, 40), torch.float32, 3)
    p = dict(v_threshold=1.0, v_reset=0.0, decay_input=False, detach_reset=False, surrogate=sg.ATan())
    s_c, v_c, _ = C.lif_multistep(x, v0, 0.0, **p)
    s_r, v_r, _ = R.lif_multistep(x, v0, 0.0, **p)
    assert torch.equal(s_c, s_r) and torch.allclose(v_c, v_r, atol=1e-6)


def test_spikes_exact_at_threshold():
    """A membrane landing exactly on V_th fires in both backends (Θ(0) = 1)."""
    x = torch.tensor([[0.5, 0.25, 1.0], [0.5, 0.75, 0.0]])
    for backend in (C, R):
        s, v, _ = backend.lif_multistep(x, torch.zeros(3), 0.5, v_threshold=0.375, v_reset=0.0, decay_input=True,
                                        detach_reset=False, surrogate=sg.Sigmoid())
        assert s.tolist() == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], backend.NAME


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_use_float32_state(dtype):
    x, v0 = _inputs((5, 300), torch.float32, 11)
    p = dict(v_threshold=0.6, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=sg.Sigmoid(),
             record_v=True)
    xh = x.detach().to(dtype).requires_grad_()
    s, v, vs = C.lif_multistep(xh, v0.detach().to(dtype), 0.5, **p)
    assert s.dtype == vs.dtype == dtype and v.dtype == torch.float32  # outputs cast back, the state stays float32
    s32, v32, vs32 = R.lif_multistep(xh.detach().float(), v0.detach().to(dtype).float(), 0.5, **p)
    assert torch.equal(s.float(), s32)
    _close(v, v32, torch.float32, "state")
    assert torch.equal(vs, vs32.to(dtype))
    s.sum().backward()
    assert xh.grad is not None and xh.grad.dtype == dtype


def test_lif_gradcheck_with_plif_decay():
    torch.manual_seed(0)
    x = (torch.randn(4, 6, dtype=torch.float64) * 0.3).requires_grad_()
    v0 = (torch.rand(6, dtype=torch.float64) * 0.2).requires_grad_()
    d = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    for v_reset, decay_input in ((0.0, True), (None, False), (-0.2, False)):
        # threshold far away: no spike flips under the finite-difference perturbation
        def f(x, v0, d):
            s, v, vs = C.lif_multistep(x, v0, d, v_threshold=5.0, v_reset=v_reset, decay_input=decay_input,
                                       detach_reset=False, surrogate=sg.Sigmoid(), record_v=True)
            return s, v, vs
        assert torch.autograd.gradcheck(f, (x, v0, d), eps=1e-6, atol=1e-7)


def test_empty_and_single_step():
    for shape in ((1, 5), (3, 0), (0, 4)):
        x = torch.randn(shape)
        v0 = torch.zeros(shape[1:])
        s, v, vs = C.lif_multistep(x, v0, 0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False,
                                   surrogate=sg.Sigmoid(), record_v=True)
        assert s.shape == x.shape and v.shape == v0.shape and vs.shape == x.shape
        if shape[0] == 0:
            assert torch.equal(v, v0)


def test_no_grad_saves_nothing_and_matches():
    x, v0 = _inputs((4, 100), torch.float32, 5)
    p = dict(v_threshold=0.6, v_reset=None, decay_input=False, detach_reset=False, surrogate=sg.Erf())
    with torch.no_grad():
        s, v, _ = C.lif_multistep(x, v0, 0.3, **p)
    assert s.grad_fn is None
    s_r, v_r, _ = R.lif_multistep(x.detach(), v0.detach(), 0.3, **p)
    assert torch.equal(s, s_r)


def test_plif_decay_grad_deterministic_over_threads():
    x, v0 = _inputs((5, 40000), torch.float32, 9)  # enough work for 2 threads
    grads = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        d = torch.tensor(0.4, requires_grad=True)
        s, v, _ = C.lif_multistep(x, v0, d, v_threshold=0.6, v_reset=0.0, decay_input=True, detach_reset=False,
                                  surrogate=sg.Sigmoid())
        grads.append(torch.autograd.grad(s.sum() + v.sum(), d)[0])
    torch.set_num_threads(2)
    assert torch.equal(grads[0], grads[1])


# ---------------------------------------------------------------------------------------- errors
def test_clear_errors():
    p = dict(v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=sg.Sigmoid())
    with pytest.raises(TypeError, match="floating point"):
        C.lif_multistep(torch.ones(3, 4, dtype=torch.int32), torch.zeros(4), 0.5, **p)
    with pytest.raises(ValueError, match="does not match one step"):
        C.lif_multistep(torch.ones(3, 4), torch.zeros(5), 0.5, **p)
    with pytest.raises(ValueError, match="one-element tensor"):
        C.lif_multistep(torch.ones(3, 4), torch.zeros(4), torch.ones(2), **p)
    with pytest.raises(TypeError, match="Surrogate"):
        C.lif_multistep(torch.ones(3, 4), torch.zeros(4), 0.5, **{**p, "surrogate": "sigmoid"})
    with pytest.raises(ValueError, match="spiking=False"):
        C.lif_multistep(torch.ones(3, 4), torch.zeros(4), 0.5, **{**p, "surrogate": sg.Sigmoid(spiking=False)})
    from snn import _C
    block = torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64)
    opts = _C.StepOptions(flags=3, strict=False, detach_reset=False, surrogate=0, a=4.0, c=0.0)
    with pytest.raises(RuntimeError, match="2-D"):
        _C.LIFStep_forward(torch.ones(3), [torch.zeros(3)], block, opts, False, False)
    with pytest.raises(RuntimeError, match="takes 3 parameters"):
        _C.LIFStep_forward(torch.ones(2, 3), [torch.zeros(3)], block[:2], opts, False, False)
    with pytest.raises(RuntimeError, match="takes 1 initial states"):
        _C.LIFStep_forward(torch.ones(2, 3), [torch.zeros(3)] * 2, block, opts, False, False)
    with pytest.raises(RuntimeError, match="flag set 4"):
        _C.LIFStep_forward(torch.ones(2, 3), [torch.zeros(3)], block,
                           _C.StepOptions(flags=4, strict=False, detach_reset=False, surrogate=0, a=4.0, c=0.0),
                           False, False)
    with pytest.raises(RuntimeError, match="unknown surrogate kind"):
        _C.LIFStep_backward(torch.ones(2, 3), [None], None, [torch.ones(2, 3)], None, [torch.zeros(3)], block,
                            _C.StepOptions(flags=3, strict=False, detach_reset=False, surrogate=9, a=1.0, c=0.0),
                            False)


def test_backend_dispatch_picks_cpp_on_cpu():
    import snn.ops as ops
    assert "cpp" in ops.available_backends()
    assert ops.resolve_backend("auto", torch.ones(2, 3)) == "cpp"


# ---------------------------------------------------------------------------------------- ALIF
@SETTINGS
@given(shape=shapes, dtype=st.sampled_from([torch.float32, torch.float64]), sur=surrogates, v_reset=v_resets,
       decay_input=st.booleans(), detach=st.booleans(), plif=st.booleans(), tau=st.floats(1.0, 8.0),
       rho=st.floats(0.0, 0.99), beta=st.floats(0.0, 1.0), record_v=st.booleans(), strict=st.booleans(),
       seed=st.integers(0, 2**16))
def test_alif_matches_reference(shape, dtype, sur, v_reset, decay_input, detach, plif, tau, rho, beta, record_v,
                                strict, seed):
    shape = (shape[0],) + shape[1]
    x, v0 = _inputs(shape, dtype, seed)
    b0 = (torch.rand(shape[1:], generator=torch.Generator().manual_seed(seed + 7), dtype=torch.float64) * 0.5)
    b0 = b0.to(dtype).requires_grad_()
    decay = torch.tensor(1.0 / tau, dtype=dtype, requires_grad=True) if plif else 1.0 / tau
    params = dict(rho=rho, beta=beta, v_threshold=0.6, v_reset=v_reset, decay_input=decay_input, detach_reset=detach,
                  surrogate=sur, record_v=record_v, strict_threshold=strict)
    results = _run_both("alif_multistep", (x, v0, b0, decay), params,
                        lambda outs: [_weights(o, seed + i) for i, o in enumerate(outs)], dtype)
    _compare(results, dtype)


def test_alif_gradcheck():
    torch.manual_seed(1)
    x = (torch.randn(4, 5, dtype=torch.float64) * 0.3).requires_grad_()
    v0 = (torch.rand(5, dtype=torch.float64) * 0.2).requires_grad_()
    b0 = (torch.rand(5, dtype=torch.float64) * 0.2).requires_grad_()
    d = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    for v_reset in (0.0, None):
        def f(x, v0, b0, d):
            return C.alif_multistep(x, v0, b0, d, rho=0.8, beta=0.5, v_threshold=5.0, v_reset=v_reset,
                                    decay_input=True, detach_reset=False, surrogate=sg.Sigmoid(), record_v=True)
        assert torch.autograd.gradcheck(f, (x, v0, b0, d), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------- CUBALIF
@SETTINGS
@given(shape=shapes, dtype=st.sampled_from([torch.float32, torch.float64]), sur=surrogates, detach=st.booleans(),
       du=st.floats(0.0, 1.0), dv=st.floats(0.0, 1.0), bias=st.sampled_from([0.0, 0.1, -0.05]),
       record_v=st.booleans(), seed=st.integers(0, 2**16))
def test_cubalif_matches_reference(shape, dtype, sur, detach, du, dv, bias, record_v, seed):
    shape = (shape[0],) + shape[1]
    x, v0 = _inputs(shape, dtype, seed)
    u0 = (torch.rand(shape[1:], generator=torch.Generator().manual_seed(seed + 3), dtype=torch.float64) * 0.3)
    u0 = u0.to(dtype).requires_grad_()
    params = dict(du=du, dv=dv, v_threshold=0.6, bias=bias, detach_reset=detach, surrogate=sur, record_v=record_v)
    results = _run_both("cubalif_multistep", (x, u0, v0), params,
                        lambda outs: [_weights(o, seed + i) for i, o in enumerate(outs)], dtype)
    _compare(results, dtype)


def test_cubalif_gradcheck_and_strict_threshold():
    torch.manual_seed(2)
    x = (torch.randn(5, 4, dtype=torch.float64) * 0.3).requires_grad_()
    u0 = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    v0 = torch.zeros(4, dtype=torch.float64, requires_grad=True)

    def f(x, u0, v0):
        return C.cubalif_multistep(x, u0, v0, du=0.3, dv=0.2, v_threshold=5.0, bias=0.01, detach_reset=False,
                                   surrogate=sg.Triangle(1.0), record_v=True)
    assert torch.autograd.gradcheck(f, (x, u0, v0), eps=1e-6, atol=1e-7)
    # V exactly at threshold does not fire (Loihi's strict V > V_th)
    s, _, _, _ = C.cubalif_multistep(torch.tensor([[1.0]]), torch.zeros(1), torch.zeros(1), du=0.0, dv=0.0,
                                     v_threshold=1.0, bias=0.0, detach_reset=False, surrogate=sg.Sigmoid())
    assert s.item() == 0.0


# ---------------------------------------------------------------------------------------- large outputs
# Outputs above a size threshold (48 MiB by default) take the streaming-store path
# (csrc/cpu/chunks.h); the test lowers the threshold to 1 MiB. n not a multiple of the chunk or of
# the vector width, several threads, every saved/recorded sequence and the PLIF decay gradient:
# still the reference's spikes and gradients.
LARGE = (2, (1 << 18) + 37)  # 2 x 262,181 float32 = 2.1 MB per sequence


@pytest.fixture
def low_stream_threshold():
    from snn import _C
    previous = _C.set_stream_threshold(1 << 20)
    assert previous == 48 << 20
    yield
    _C.set_stream_threshold(previous)


def test_streaming_stores_are_compiled_in_where_the_cpu_has_them():
    """The streaming path silently degrading to plain copies (as it once did) must fail a test."""
    import platform
    from snn import _C
    flags = open("/proc/cpuinfo").read().split() if platform.system() == "Linux" else []
    if platform.machine() != "x86_64" or "avx" not in flags:
        pytest.skip("streaming stores are x86 AVX only")
    assert _C.streaming_isa() == (2 if "avx512f" in flags else 1)


@pytest.mark.parametrize("family", ["lif", "alif", "cubalif"])
def test_large_outputs_stream_and_match(family, low_stream_threshold):
    x, v0 = _inputs(LARGE, torch.float32, 21)
    assert x[0].numel() * x.shape[0] * 4 >= 1 << 20
    sur = sg.Sigmoid(3.0)
    if family == "lif":
        d = torch.tensor(0.4, requires_grad=True)
        inputs = (x, v0, d)
        params = dict(v_threshold=0.6, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=sur,
                      record_v=True)
    elif family == "alif":
        d = torch.tensor(0.4, requires_grad=True)
        inputs = (x, v0, torch.zeros_like(v0).requires_grad_(), d)
        params = dict(rho=0.9, beta=0.2, v_threshold=0.6, v_reset=None, decay_input=True, detach_reset=False,
                      surrogate=sur, record_v=True)
    else:
        inputs = (x, torch.zeros_like(v0).requires_grad_(), v0)
        params = dict(du=0.3, dv=0.2, v_threshold=0.6, bias=0.0, detach_reset=False, surrogate=sur, record_v=True)
    torch.set_num_threads(2)
    results = _run_both(f"{family}_multistep", inputs, params,
                        lambda outs: [_weights(o, 21 + i) for i, o in enumerate(outs)], torch.float32)
    (outs_c, grads_c), (outs_r, grads_r) = results
    assert torch.equal(outs_c[0], outs_r[0]), "spikes differ from the torch reference"
    for a, b in zip(outs_c[1:], outs_r[1:]):
        _close(a, b, torch.float32, "state")
    for i, (a, b) in enumerate(zip(grads_c, grads_r)):
        if a.dim() == 0:  # the decay gradient sums 4M terms: float32 reference rounding, relative 1e-4
            torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
        else:
            _close(a, b, torch.float32, f"gradient {i}")


def test_nan_input_gives_nan_gradient_like_the_reference():
    """A NaN membrane must not come out of the sigmoid/erf surrogate as a tiny finite number."""
    x = torch.tensor([[0.2, float("nan"), 0.9], [0.5, 0.1, 0.3]], requires_grad=True)
    grads = []
    for backend in (C, R):
        xb = x.detach().clone().requires_grad_()
        for sur in (sg.Sigmoid(), sg.Erf()):
            s, _, _ = backend.lif_multistep(xb, torch.zeros(3), 0.5, v_threshold=0.6, v_reset=None,
                                            decay_input=True, detach_reset=True, surrogate=sur)
            grads.append(torch.autograd.grad(s.sum(), xb)[0].isnan())
    assert grads[0].any() and torch.equal(grads[0], grads[2]) and torch.equal(grads[1], grads[3])


# ---------------------------------------------------------------------------------------- misc
def test_double_backward_is_a_clear_error():
    x, v0 = _inputs((3, 8), torch.float64, 4)
    s, v, _ = C.lif_multistep(x, v0, 0.5, v_threshold=0.6, v_reset=0.0, decay_input=True, detach_reset=False,
                              surrogate=sg.Sigmoid())
    (g,) = torch.autograd.grad(s.sum() + v.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_neuron_modules_run_on_cpp_and_match_torch():
    from snn import functional as SF
    from snn import neuron
    torch.manual_seed(0)
    x = torch.rand(6, 4, 33) * 1.5
    for make in (lambda b: neuron.LIF(tau=3.0, step_mode="m", backend=b),
                 lambda b: neuron.PLIF(init_tau=2.5, v_reset=None, step_mode="m", backend=b),
                 lambda b: neuron.ALIF(step_mode="m", backend=b),
                 lambda b: neuron.CUBALIF(du=0.3, dv=0.2, bias=0.05, step_mode="m", backend=b)):
        outs = []
        for b in ("cpp", "torch"):
            n = make(b)
            xi = x.clone().requires_grad_()
            s1 = n(xi)
            s2 = n(xi)  # state carried across calls
            (s1.sum() + 2 * s2.sum()).backward()
            outs.append((s1, s2, xi.grad, [p.grad for p in n.parameters()]))
            assert n.last_backend == b
            SF.reset(n)
        (a1, a2, ga, pa), (b1, b2, gb, pb) = outs
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
        torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)
        for p, q in zip(pa, pb):
            torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)


def test_cuda_is_the_cpp_backend_on_cuda_tensors():
    """'cuda' names the cpp backend for CUDA tensors: CPU tensors are an error naming the device; without a CUDA
    build or GPU it is unavailable (an error, never a fallback)."""
    p = dict(v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=sg.Sigmoid())
    if "cuda" not in ops.available_backends():
        assert not cpp_backend.cuda_built()
        with pytest.raises(RuntimeError, match="not available"):
            ops.lif_multistep(torch.ones(2, 3), torch.zeros(3), 0.5, backend="cuda", **p)
    else:  # pragma: no cover - needs a GPU and a CUDA build
        with pytest.raises(RuntimeError, match="runs CUDA tensors"):
            ops.lif_multistep(torch.ones(2, 3), torch.zeros(3), 0.5, backend="cuda", **p)
    assert cpp_backend.supports(ops.neurons.get("lif"), "cpu") is None
