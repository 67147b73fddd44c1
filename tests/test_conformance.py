"""Conformance of every registered neuron spec on every backend against the torch reference scan.

For each registered spec (the built-in families, any spec another module registered, and the README's user
neuron examples/user_neuron.py, registered by tests/test_neuron_user.py, whose C++ step is compiled on first
use) and the DSR neurons' spec x backend (torch in single-step mode, cpp,
triton in the interpreter, cuda where a GPU is present) x dtype (float32, float64, float16, bfloat16) x step
mode ('m': one call over T steps; 's': T calls carrying the states) x surrogate (every kind) x variant (every
combination of the spec's kernel flags, the threshold comparison unless the spec fixes it, detach_reset):

* spikes identical to the reference (16-bit inputs: to the float32-state reference on the same values);
* states and the recorded state within rounding, in the state dtype (float32 for 16-bit inputs);
* gradients of a random weighting of every output w.r.t. the input, the initial states and the learnable
  parameters within rounding (16-bit: relative to the gradient's norm);
* torch.autograd.gradcheck in float64 on small shapes, where the Triangle surrogate's support lies inside the
  nearest approach to the threshold (so σ' is exactly 0 and finite differences see the dynamics alone).

cpp and torch run the whole product (small shapes); the Triton interpreter (slow, a subprocess with
TRITON_INTERPRET=1 as in test_kernels_triton.py) runs every spec x dtype x step mode and covers every surrogate
and every variant of each spec at least once. Hypothesis samples larger shapes on the compiled backends.
"""
from __future__ import annotations

import itertools
import os
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import snn  # noqa: E402
from snn import surrogate as sg  # noqa: E402
from snn.functional import state_dtype  # noqa: E402
from triton_interp import serve, worker_fixture  # noqa: E402

DTYPES = ("float32", "float64", "float16", "bfloat16")
MODES = ("m", "s")
KINDS = sorted(sg.KINDS)
T_STEPS, SHAPE = 4, (2, 13)


def all_specs():
    """Every registered spec (importing the user-neuron test registers the README's neuron) and the DSR neurons' spec,
    which is not in the registry of families."""
    import test_neuron_user  # noqa: F401
    from snn.neurons.dsr import DSR
    return [*snn.neurons.specs(), DSR]


def variants(spec):
    """(flags, strict, detach) for every flag combination, comparison and detach_reset."""
    stricts = (False, True) if spec.strict_threshold is None else (spec.strict_threshold,)
    flag_sets = itertools.product((False, True), repeat=len(spec.kernel_flags))
    return [(f, s, d) for f in flag_sets for s in stricts for d in (False, True)]


def default_kernel(spec, dtype):
    """The kernel parameter block of the spec's default parameters; learnable slots as tensors with a gradient."""
    values = spec.validate({}, spec.name)
    for p in spec.learned:
        values[p.name] = torch.tensor(float(p.init(values)), dtype=dtype)
    params, _ = spec.kernel(values)
    out = []
    for i, p in enumerate(params):
        if i < spec.learnable:
            p = torch.as_tensor(p, dtype=dtype).detach().clone().requires_grad_()
        elif isinstance(p, torch.Tensor):
            p = float(p)
        out.append(p)
    return out


def make_inputs(spec, dtype, T, shape, seed, scale=1.0):
    """Input ``[T, *shape]`` in ``dtype`` around the spec's input scale, initial states near their initial values
    (state dtype, with a gradient), and the kernel parameters."""
    g = torch.Generator().manual_seed(seed)
    sdt = state_dtype(dtype)
    params = default_kernel(spec, sdt)
    x = ((torch.randn((T, *shape), generator=g, dtype=torch.float64) + 0.6) * spec.input_scale * scale).to(dtype)
    states = []
    for st in spec.states:
        init = spec.initial(st.name, [float(p.detach()) if isinstance(p, torch.Tensor) else p for p in params])
        noise = torch.rand(shape, generator=g, dtype=torch.float64) * 0.2 * spec.input_scale * scale
        states.append((init + noise).to(sdt).requires_grad_())
    return x, states, params


def run(spec, backend, mode, x, states, params, flags, surrogate, strict, detach):
    """(spikes, last states, recorded state) of one backend in one step mode."""
    kw = dict(surrogate=surrogate, detach_reset=detach, strict_threshold=strict, backend=backend)
    if mode == "m":
        return snn.ops.run(spec, x, states, params, flags, record_v=True, **kw)
    spikes, recorded, st = [], [], states
    for t in range(x.shape[0]):
        s, st, v = snn.ops.run(spec, x[t:t + 1], st, params, flags, record_v=True, **kw)
        spikes.append(s)
        recorded.append(v)
    return torch.cat(spikes), st, torch.cat(recorded)


def gradients(out, leaves, seed):
    s, last, v = out
    g = torch.Generator().manual_seed(seed + 1)
    loss = (s.double() * torch.randn(s.shape, generator=g, dtype=torch.float64)).sum()
    for k, st in enumerate(last):
        loss = loss + (st.double() * (k + 1.5)).sum()
    loss = loss + 0.5 * v.double().sum()
    return torch.autograd.grad(loss, leaves, allow_unused=True)


def check(spec, backend, dtype_name, mode, kind, flags, strict, detach, T=T_STEPS, shape=SHAPE, seed=0,
          device="cpu"):
    """One case: ``backend`` in step ``mode`` against the torch reference ('m') on the same values."""
    dtype = getattr(torch, dtype_name)
    half = dtype in (torch.float16, torch.bfloat16)
    surrogate = sg.KINDS[kind]()
    x, states, params = make_inputs(spec, dtype, T, shape, seed)
    x, states = x.to(device), [s.detach().to(device).requires_grad_() for s in states]
    params = [p.detach().to(device).requires_grad_() if isinstance(p, torch.Tensor) else p for p in params]
    what = f"{spec.name} {backend}/{mode} {dtype_name} kind={kind} flags={flags} strict={strict} detach={detach}"

    xr = x.detach().to(state_dtype(dtype)).requires_grad_()
    sr = [s.detach().clone().requires_grad_() for s in states]
    pr = [p.detach().clone().requires_grad_() if isinstance(p, torch.Tensor) else p for p in params]
    ref = run(spec, "torch", "m", xr, sr, pr, flags, surrogate, strict, detach)
    xb = x.detach().clone().requires_grad_()
    got = run(spec, backend, mode, xb, states, params, flags, surrogate, strict, detach)

    assert got[0].dtype == dtype and got[2].dtype == dtype, f"{what}: outputs not in the input dtype"
    bad = int((got[0].to(ref[0].dtype) != ref[0]).sum())
    assert bad == 0, f"{what}: {bad} of {ref[0].numel()} spikes differ from the reference"
    for k, a in enumerate(got[1]):
        assert a.dtype == state_dtype(dtype), f"{what}: state {k} in {a.dtype}"
        assert torch.isfinite(a).all(), f"{what}: state {k} is not finite"
    keep = tame(spec, ref)
    assert keep.float().mean() >= 0.25, f"{what}: most neurons diverged, the case compares too little"
    tol = 1e-9 if dtype == torch.float64 else 2e-5
    scale = spec.input_scale
    for k, (a, b) in enumerate(zip(got[1], ref[1])):
        torch.testing.assert_close(a[keep], b[keep], atol=tol * scale, rtol=tol,
                                   msg=lambda m: f"{what}: state {k}: {m}")
    torch.testing.assert_close(got[2][:, keep].double(), ref[2][:, keep].to(dtype).double(), atol=tol * scale,
                               rtol=tol if not half else 2 ** -7, msg=lambda m: f"{what}: recorded state: {m}")

    learn_b = [p for p in params if isinstance(p, torch.Tensor)]
    learn_r = [p for p in pr if isinstance(p, torch.Tensor)]
    g_got = gradients(got, [xb, *states, *learn_b], seed)
    g_ref = gradients(ref, [xr, *sr, *learn_r], seed)
    for k, (a, b) in enumerate(zip(g_got, g_ref)):
        if b is None or a is None:
            assert (a is None or not a.any()) and (b is None or not b.any()), f"{what}: gradient {k} missing"
            continue
        if a.dim() > 0:  # per neuron (the input, the initial states): the tame neurons
            a, b = (a[:, keep], b[:, keep]) if a.dim() == keep.dim() + 1 else (a[keep], b[keep])
        elif not keep.all():  # a learnable parameter's gradient sums over every neuron
            continue
        over = ~torch.isfinite(a)  # beyond the 16-bit range: the reference must overflow there too
        if over.any():
            assert torch.equal(a[over], b.to(a.dtype)[over]), f"{what}: gradient {k} is not finite"
            a, b = a.masked_fill(over, 0), b.masked_fill(over, 0)
        if half or dtype == torch.float32:
            err, norm = (a.double() - b.double()).norm().item(), b.double().norm().item()
            rel = {"cpp": 1e-4, "torch": 1e-5, "cuda": 1e-4}.get(backend, 0.005)
            if half:
                rel = {"cpp": 0.01, "torch": 0.01, "cuda": 0.01}.get(backend, 0.005 if dtype == torch.float16
                                                                       else 0.03)
            slack = 1e-5 * b.numel() ** 0.5 + (1e-3 * b.numel() ** 0.5 if half and backend == "triton" else 0.0)
            assert err <= rel * norm + slack, f"{what}: gradient {k}: |err| {err:.3g} vs |ref| {norm:.3g}"
        else:
            torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-8, msg=lambda m: f"{what}: gradient {k}: {m}")


DIVERGED = 1e3  # |state| beyond this many input scales: the neuron has diverged


def tame(spec, ref) -> torch.Tensor:
    """The neurons whose reference states stayed within ±DIVERGED·input_scale at every step.

    QIF, EIF and Izhikevich blow up in finite time (soft reset, large inputs) until the bound holds them: on the
    way each rounding is amplified by the quadratic or exponential term (an exponent off by Δ gives a state
    relatively off by Δ), so float32 results of two correct backends part by more than rounding there. For a
    diverged neuron the suite checks the spikes exactly and the states for finiteness, not their values."""
    _, last, v = ref
    peak = v.detach().abs().amax(0)
    for st in last:
        peak = torch.maximum(peak, st.detach().abs())
    return peak <= DIVERGED * spec.input_scale


def nearest_margin(spec, x, states, params, flags) -> float:
    """The smallest |h - θ| over a float64 run of the torch step (0 when a neuron meets its threshold)."""
    p, f = spec.namespaces([float(v.detach()) if isinstance(v, torch.Tensor) else v for v in params], flags)
    st, low = tuple(s.detach() for s in states), float("inf")
    with torch.no_grad():
        for xt in x:
            h, theta, st = spec.charge(xt, st, p, f)
            m = h - theta
            low = min(low, float(m.abs().min()))
            s = (m >= 0).to(m.dtype)
            st = spec.reset(h, theta, s, s, st, p, f)
    return low


def gradcheck_case(spec, backend, device="cpu"):
    """gradcheck in float64 of every output w.r.t. the input, the initial states and the learnable parameters,
    for every flag set; inputs small enough that no neuron reaches its threshold."""
    for flags in itertools.product((False, True), repeat=len(spec.kernel_flags)):
        x, states, params = make_inputs(spec, torch.float64, 3, (4,), seed=5, scale=0.05)
        margin = nearest_margin(spec, x, states, params, flags)
        assert margin > 1e-6, f"{spec.name}: the gradcheck inputs reach the threshold"
        surrogate = sg.Triangle(2.0 / margin)  # σ'(m) = 0 for |m| >= margin / 2
        learn = [i for i, p in enumerate(params) if isinstance(p, torch.Tensor)]
        x, states = x.to(device).requires_grad_(), [s.detach().to(device).requires_grad_() for s in states]
        tensors = [params[i].detach().to(device).requires_grad_() for i in learn]

        def f(x, *rest):
            st, lp = list(rest[:len(states)]), list(rest[len(states):])
            ps = list(params)
            for i, t in zip(learn, lp):
                ps[i] = t
            s, last, v = snn.ops.run(spec, x, st, ps, flags, surrogate=surrogate, record_v=True, backend=backend)
            return (s, *last, v)
        assert torch.autograd.gradcheck(f, (x, *states, *tensors), eps=1e-6, atol=1e-7), f"{spec.name} {flags}"


def triton_plan(spec):
    """Triton cases of one spec: every dtype x step mode, and every surrogate and variant at least once."""
    combos = list(itertools.product(DTYPES, MODES))
    var = variants(spec)
    n = max(len(combos), len(KINDS), len(var))
    return [(combos[i % len(combos)], KINDS[i % len(KINDS)], var[i % len(var)]) for i in range(n)]


# -- the Triton interpreter worker (a subprocess: TRITON_INTERPRET must be set before triton loads) ---------
def _worker_handle(req: dict) -> None:
    spec = {s.name: s for s in all_specs()}[req["spec"]]
    if req.get("gradcheck"):
        gradcheck_case(spec, "triton")
    else:
        check(spec, "triton", req["dtype"], req["mode"], req["kind"], tuple(req["flags"]), req["strict"],
              req["detach"])


if __name__ == "__main__" and "--worker" in sys.argv:
    from snn.ops import triton_backend
    torch.set_num_threads(1)
    triton_backend.BLOCK = 16  # several programs and a ragged last one
    serve(_worker_handle)
    sys.exit(0)


# -- tests ---------------------------------------------------------------------------------------------------
SPECS = all_specs()
NAMES = [s.name for s in SPECS]
BY_NAME = dict(zip(NAMES, SPECS))
COMPILED = [b for b in ("cpp", "cuda") if b in snn.ops.available_backends()]


def _device(backend):
    return "cuda" if backend == "cuda" else "cpu"


def _runs(spec, backend) -> bool:
    return snn.ops.get_backend(backend).supports(spec, torch.device(_device(backend))) is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["torch", *COMPILED])
@pytest.mark.parametrize("name", NAMES)
def test_backend_matches_reference(name, backend, dtype, mode):
    """The whole product of surrogates and variants for one spec x backend x dtype x step mode."""
    spec = BY_NAME[name]
    if backend == "torch" and mode == "m":
        pytest.skip("the reference itself")
    if not _runs(spec, backend):
        pytest.skip(f"{backend} has no step for {name}")
    for kind in KINDS:
        for flags, strict, detach in variants(spec):
            check(spec, backend, dtype, mode, kind, flags, strict, detach, device=_device(backend))


@pytest.mark.parametrize("backend", ["torch", *COMPILED])
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name, backend):
    spec = BY_NAME[name]
    if not _runs(spec, backend):
        pytest.skip(f"{backend} has no step for {name}")
    gradcheck_case(spec, backend, _device(backend))


triton_worker = worker_fixture(__file__)


@pytest.mark.parametrize("name", NAMES)
def test_triton_matches_reference(triton_worker, name):
    spec = BY_NAME[name]
    if spec.triton is None:
        pytest.skip(f"{name} has no Triton step")
    for (dtype, mode), kind, (flags, strict, detach) in triton_plan(spec):
        triton_worker(dict(spec=name, dtype=dtype, mode=mode, kind=kind, flags=list(flags), strict=strict,
                           detach=detach))
    triton_worker(dict(spec=name, gradcheck=True))


@pytest.mark.skipif(not COMPILED, reason="snn._C is not built")
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_larger_shapes_sampled(data):
    """Larger, awkward shapes (N not a multiple of the vector width or of the 1024-neuron chunk, T up to 24) on
    the compiled backends, for sampled specs, dtypes, step modes, surrogates and variants."""
    backend = data.draw(st.sampled_from(COMPILED))
    spec = data.draw(st.sampled_from([s for s in SPECS if _runs(s, backend)]))
    flags, strict, detach = data.draw(st.sampled_from(variants(spec)))
    shape = data.draw(st.sampled_from([(1031,), (3, 517), (2, 2, 263), (2049,)]))
    check(spec, backend, data.draw(st.sampled_from(DTYPES)), data.draw(st.sampled_from(MODES)),
          data.draw(st.sampled_from(KINDS)), flags, strict, detach, T=data.draw(st.integers(1, 24)), shape=shape,
          seed=data.draw(st.integers(0, 2**16)), device=_device(backend))


def test_the_triton_plan_covers_every_surrogate_variant_dtype_and_mode():
    for spec in SPECS:
        plan = triton_plan(spec)
        assert {c for c, _, _ in plan} == set(itertools.product(DTYPES, MODES))
        assert {k for _, k, _ in plan} == set(KINDS) and {v for _, _, v in plan} == set(variants(spec))


def test_every_registered_spec_is_in_the_suite():
    assert set(snn.neurons.names()) <= set(NAMES)
    assert {"if", "lif", "plif", "alif", "cubalif", "my_lif"} <= set(NAMES)
