"""The Triton kernels (``kernels/``, backend ``'triton'``) against the torch reference, in the interpreter.

The kernels run on CPU tensors under ``TRITON_INTERPRET=1``. That variable must be set before
triton is imported and it changes what ``snn.ops.available_backends()`` reports, so it is never set
in the pytest process: the cases run in one worker subprocess (this file run as a script, started
once per module), and hypothesis draws them here and sends them over a pipe, one JSON line each.

Checked per case: spikes identical to :mod:`snn.functional` (the ground truth), states, ``v_seq``
and the gradients w.r.t. ``x_seq``, the initial states and the PLIF decay within 1e-5 (float32) /
1e-10 (float64). Shapes are awkward on purpose (``N`` not a multiple of the block, several programs,
``T = 1``, ``T = 0``, ``N = 0``, non-contiguous inputs); every surrogate, reset mode and parameter.
The interpreter is slow, so the sizes are small and ``max_examples`` bounded.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


# -- worker side (runs in the subprocess, with TRITON_INTERPRET=1) ---------------------------------
class _Backend:
    """``ops.<family>_multistep`` on one backend: ``tri.lif_multistep(...)`` is
    ``ops.lif_multistep(..., backend='triton')``."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, fn):
        import functools

        from snn import ops
        return functools.partial(getattr(ops, fn), backend=self.name)


def _worker_case(case: dict) -> None:
    """Run one case on the triton and torch backends and assert they agree (raises on mismatch)."""
    import torch

    from snn import surrogate as sg
    from snn.ops import triton_backend as tri

    ref, tri_ops = _Backend("torch"), _Backend("triton")

    dtype = getattr(torch, case["dtype"])
    half = dtype in (torch.float16, torch.bfloat16)
    tri.BLOCK = case.get("block", 32)        # None: the backend's own choice
    g = torch.Generator().manual_seed(case["seed"])
    T, shape = case["T"], tuple(case["shape"])
    fam = case["family"]
    scale = case.get("scale", 1.5)

    def rnd(*size, lo=-1.0, hi=1.0):
        return torch.rand(*size, generator=g, dtype=torch.float64) * (hi - lo) + lo

    if case.get("grid"):
        # multiples of 1/4: with decay 1/2 the charge lands exactly on the threshold often
        x = (torch.randint(-6, 7, (T, *shape), generator=g).double() / 4)
    else:
        x = rnd(T, *shape) * scale + case.get("x_shift", 0.3)
    dev = torch.device(case.get("device", "cpu"))
    x = x.to(dev, dtype)
    if case.get("noncontig") and x.dim() >= 2:
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=dev)
        wide[..., ::2] = x
        x = wide[..., ::2]                                          # same values, strided layout
        assert x.stride(-1) == 2
    states = [(rnd(*shape, lo=0.0, hi=0.6) if not case.get("grid") else torch.zeros(shape, dtype=torch.float64))
              .to(dev, dtype) for _ in range(2 if fam != "lif" else 1)]
    surrogate = sg.KINDS[case["kind"]](case["alpha"])
    kw = dict(surrogate=surrogate, detach_reset=case["detach"], record_v=case["record_v"])
    if fam in ("lif", "alif"):
        kw.update(v_threshold=case["v_th"], v_reset=case["v_reset"], decay_input=case["decay_input"],
                  strict_threshold=case.get("strict", False))
        if fam == "alif":
            kw.update(rho=case["rho"], beta=case["beta"])
    else:
        kw.update(du=case["du"], dv=case["dv"], v_threshold=case["v_th"], bias=case["bias"])

    # the reference runs in the kernels' state dtype (float32 for 16-bit inputs)
    ref_dt = torch.float64 if dtype == torch.float64 else torch.float32

    def decay_for(dt):
        if case.get("plif"):
            return torch.tensor(case["decay"], dtype=dt, device=dev).requires_grad_(case["grad"])
        return case.get("decay")

    def run(backend, dt):
        xs = x.detach().to(dt).requires_grad_(case["grad"])
        st = [s.detach().to(dt).requires_grad_(case["grad"]) for s in states]
        d = decay_for(ref_dt)       # a PLIF weight stays float32 under 16-bit inputs
        with torch.set_grad_enabled(case["grad"]):
            if fam == "lif":
                out = backend.lif_multistep(xs, st[0], d, **kw)
            elif fam == "alif":
                out = backend.alif_multistep(xs, st[0], st[1], d, **kw)
            else:
                out = backend.cubalif_multistep(xs, st[0], st[1], **kw)
        leaves = [xs, *st] + ([d] if isinstance(d, torch.Tensor) else [])
        return out, leaves

    out_t, leaves_t = run(tri_ops, dtype)
    if T == 0:      # the reference cannot stack zero steps: the state passes through unchanged
        assert out_t[0].shape == x.shape and out_t[0].dtype == dtype
        for got, st in zip(out_t[1:1 + len(states)], states):
            assert got.dtype == ref_dt and torch.equal(got, st.to(ref_dt))   # states come back in the state dtype
        if case["record_v"]:
            assert out_t[-1].shape == x.shape
        return
    out_r, leaves_r = run(ref, ref_dt)
    if case["record_v"]:
        assert out_t[-1] is not None and out_t[-1].shape == x.shape
    else:
        assert out_t[-1] is None and out_r[-1] is None
    out_t = [o for o in out_t if o is not None]
    out_r = [o for o in out_r if o is not None]
    assert out_t[0].dtype == dtype and out_t[0].shape == x.shape
    # spikes: bit-identical (16-bit inputs: identical to the float32 reference on the same values)
    assert torch.equal(out_t[0].to(ref_dt), out_r[0]), "spikes differ from the reference"
    tol = {torch.float32: 1e-5, torch.float64: 1e-10}.get(dtype)
    for i, (a, b) in enumerate(zip(out_t[1:], out_r[1:])):
        if a.dtype == ref_dt:   # a state: kept in the state dtype (float32 for 16-bit inputs)
            t = {torch.float32: 1e-5, torch.float64: 1e-10}[ref_dt]
            torch.testing.assert_close(a, b, atol=t, rtol=t, msg=lambda m: f"output {i + 1}: {m}")
        elif dtype == torch.float16:
            assert torch.equal(a, b.to(dtype)), f"output {i + 1}: not the rounded float32 reference"
        elif half:
            # the interpreter casts float32 -> bfloat16 by truncation (GPUs round to nearest even): 1 ulp
            torch.testing.assert_close(a.float(), b, atol=1e-6, rtol=2 ** -7, msg=lambda m: f"output {i + 1}: {m}")
        else:
            torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f"output {i + 1}: {m}")
    if not case["grad"]:
        return
    # a random weighting of every output, the same for both backends
    gw = torch.Generator().manual_seed(case["seed"] + 1)
    used = case.get("used", [True] * len(out_t))
    weights = [torch.randn(o.shape, generator=gw, dtype=torch.float64).to(dev) for o in out_t]

    def loss(outs):
        return sum((o.to(torch.float64) * w).sum() for o, w, u in zip(outs, weights, used) if u)

    if not any(used[:len(out_t)]):
        return
    grads_t = torch.autograd.grad(loss(out_t), leaves_t, allow_unused=True)
    grads_r = torch.autograd.grad(loss(out_r), leaves_r, allow_unused=True)
    for i, (a, b) in enumerate(zip(grads_t, grads_r)):
        if b is None:
            assert a is None or not a.any(), f"grad {i}: reference has none"
            continue
        assert a is not None, f"grad {i}: missing"
        assert a.shape == b.shape, f"grad {i}: shape {a.shape} != {b.shape}"
        if half:
            # the backward reads H rounded to the input dtype, so the surrogate is evaluated a rounding
            # away from the float32 reference's point: compare the whole gradient, relative to its norm
            err, ref_norm = (a.double() - b.double()).norm().item(), b.double().norm().item()
            rel = 0.005 if dtype == torch.float16 else 0.03
            slack = 1e-3 * b.numel() ** 0.5
            if b.dim() == 0:    # the PLIF decay: a sum of T·N terms, each off by ~1 ulp of the 16-bit Z
                slack += 4 * (2.0 ** -11 if dtype == torch.float16 else 2.0 ** -8) * x.numel() ** 0.5
            assert err <= rel * ref_norm + slack, f"grad {i}: |err| {err} vs |ref| {ref_norm}"
        else:
            torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f"grad {i}: {m}")


def _worker_misc(name: str) -> None:
    """Checks that need the interpreter but no reference comparison."""
    import torch

    import snn
    from snn import ops
    from snn.ops import triton_backend

    tri = _Backend("triton")
    if name == "available":
        assert "triton" in ops.available_backends()
        assert triton_backend.supports(snn.neurons.get("lif"), "cpu") is None
        assert ops.resolve_backend("triton", torch.zeros(2, 3)) == "triton"
        assert ops.resolve_backend("auto", torch.zeros(2, 3)) != "triton"   # auto never picks the interpreter
    elif name == "modules":
        # the neuron modules on backend='triton' equal backend='torch', PLIF's w gradient included
        torch.manual_seed(0)
        x = torch.randn(5, 3, 37) * 2 + 0.5
        for make in (lambda b: snn.neuron.LIF(tau=3.0, step_mode="m", backend=b),
                     lambda b: snn.neuron.IF(v_reset=None, step_mode="m", backend=b),
                     lambda b: snn.neuron.PLIF(init_tau=2.5, step_mode="m", backend=b),
                     lambda b: snn.neuron.ALIF(step_mode="m", backend=b, rho=0.5, beta=0.4),
                     lambda b: snn.neuron.CUBALIF(du=0.2, dv=0.3, bias=0.1, step_mode="m", backend=b)):
            res = []
            for b in ("triton", "torch"):
                m = make(b)
                xs = x.clone().requires_grad_()
                s1 = m(xs)
                s2 = m(xs * 0.5)                   # state carried between calls
                assert m.last_backend == b
                (s1.sum() * 0.3 + s2.sum() + m.v.sum()).backward()
                res.append((s1, s2, m.v.detach(), xs.grad, [p.grad for p in m.parameters()]))
            (a1, a2, av, ag, ap), (b1, b2, bv, bg, bp) = res
            assert torch.equal(a1, b1) and torch.equal(a2, b2)
            torch.testing.assert_close(av, bv, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(ag, bg, atol=1e-5, rtol=1e-5)
            for p, q in zip(ap, bp):
                torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5)
        # single-step mode
        m1, m2 = snn.neuron.LIF(backend="triton"), snn.neuron.LIF(backend="torch")
        for t in range(3):
            assert torch.equal(m1(x[t]), m2(x[t]))
    elif name == "no_grad_saves_nothing":
        x = torch.randn(4, 100)
        v = torch.zeros(100)
        with torch.no_grad():
            s, vl, vs = tri.lif_multistep(x, v, 0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                                          detach_reset=False, surrogate=snn.surrogate.ATan())
        assert s.grad_fn is None and vs is None
        # with a gradient the graph holds H only (plus the inputs autograd already has)
        xs = x.clone().requires_grad_()
        s, vl, _ = tri.lif_multistep(xs, v, 0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                                     detach_reset=False, surrogate=snn.surrogate.ATan())
        node = s.grad_fn
        while not hasattr(node, "saved_tensors"):          # past the reshape views
            node = node.next_functions[0][0]
        saved = [t for t in node.saved_tensors if t is not None]
        big = [t for t in saved if t.numel() == x.numel()]
        assert len(big) == 1, [t.shape for t in saved]
    elif name == "errors":
        x = torch.randn(3, 4)
        try:
            tri.lif_multistep(x.int(), torch.zeros(4), 0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                              detach_reset=False, surrogate=snn.surrogate.Sigmoid())
        except TypeError as e:
            assert "dtype" in str(e)
        else:
            raise AssertionError("an int input was accepted")
        smooth = snn.surrogate.Sigmoid()
        smooth.spiking = False          # the smooth (ANN-like) mode runs on the torch backend only
        try:
            tri.lif_multistep(x, torch.zeros(4), 0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                              detach_reset=False, surrogate=smooth)
        except ValueError as e:
            assert "torch" in str(e) and "spiking=False" in str(e)
        else:
            raise AssertionError("a non-spiking surrogate was accepted")
    else:
        raise ValueError(name)


def _worker_handle(req: dict) -> None:
    if "misc" in req:
        _worker_misc(req["misc"])
    else:
        _worker_case(req)


if __name__ == "__main__" and "--worker" in sys.argv:
    os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch
    from triton_interp import serve
    torch.set_num_threads(1)
    serve(_worker_handle, limit=6)
    sys.exit(0)

# -- test side (the pytest process) ------------------------------------------------------------------
pytest.importorskip("triton")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from triton_interp import worker_fixture  # noqa: E402

_SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
                 database=None)


worker = worker_fixture(__file__)


_shapes = st.one_of(
    st.tuples(st.integers(1, 90)),                                  # N: ragged, 1..3 programs of 32
    st.tuples(st.integers(1, 3), st.integers(1, 40)),
    st.tuples(st.integers(1, 2), st.integers(2, 5), st.integers(1, 9)),
)
_common = dict(
    T=st.integers(1, 6), shape=_shapes, dtype=st.sampled_from(["float32", "float64"]), kind=st.integers(0, 4),
    detach=st.booleans(), record_v=st.booleans(), seed=st.integers(0, 2**31 - 1),
    noncontig=st.booleans(), grad=st.just(True),
    block=st.sampled_from([16, 32, 64]),
)


def _alpha(kind):
    return {0: st.floats(1.0, 6.0), 1: st.floats(0.5, 4.0), 2: st.floats(2.0, 30.0), 3: st.floats(0.3, 1.5),
            4: st.floats(0.5, 4.0)}[kind]


@st.composite
def _lif_cases(draw):
    case = {k: draw(v) for k, v in _common.items()}
    case["family"] = "lif"
    case["alpha"] = draw(_alpha(case["kind"]))
    case["v_th"] = draw(st.floats(0.3, 1.5))
    case["v_reset"] = draw(st.one_of(st.none(), st.floats(-0.5, 0.2)))
    variant = draw(st.sampled_from(["if", "lif", "plif"]))
    case["plif"] = variant == "plif"
    case["decay"] = 0.0 if variant == "if" else draw(st.floats(0.05, 0.95))
    case["decay_input"] = False if variant == "if" else draw(st.booleans())
    case["grid"] = draw(st.booleans()) and variant != "if"
    case["strict"] = draw(st.booleans())
    if case["grid"]:
        case["decay"], case["v_th"] = 0.5, 1.0
        case["v_reset"] = draw(st.sampled_from([None, 0.0, -0.25]))
    return case


@st.composite
def _alif_cases(draw):
    case = draw(_lif_cases())
    case["family"] = "alif"
    case["rho"] = draw(st.floats(0.0, 0.95))
    case["beta"] = draw(st.floats(0.0, 1.0))
    return case


@st.composite
def _cubalif_cases(draw):
    case = {k: draw(v) for k, v in _common.items()}
    case.update(family="cubalif", alpha=draw(_alpha(case["kind"])), du=draw(st.floats(0.0, 1.0)),
                dv=draw(st.floats(0.0, 1.0)), v_th=draw(st.floats(0.3, 1.5)), bias=draw(st.floats(-0.2, 0.3)))
    return case


@settings(max_examples=90, **_SETTINGS)
@given(case=_lif_cases())
def test_lif_matches_reference(worker, case):
    worker(case)


@settings(max_examples=60, **_SETTINGS)
@given(case=_alif_cases())
def test_alif_matches_reference(worker, case):
    worker(case)


@settings(max_examples=40, **_SETTINGS)
@given(case=_cubalif_cases())
def test_cubalif_matches_reference(worker, case):
    worker(case)


def _base(family, **kw):
    case = dict(family=family, T=3, shape=[2, 21], dtype="float32", kind=0, alpha=4.0, detach=False,
                record_v=True, seed=7, noncontig=False, grad=True, block=16, v_th=1.0, v_reset=0.0,
                decay=0.5, decay_input=True, plif=False, rho=0.9, beta=0.3, du=0.3, dv=0.2, bias=0.1)
    case.update(kw)
    return case


@pytest.mark.parametrize("family", ["lif", "alif", "cubalif"])
@pytest.mark.parametrize("edge", ["T1", "T0", "N0", "no_grad", "some_outputs", "fp16", "bf16", "threshold_ties"])
def test_edge_cases(worker, family, edge):
    kw = {
        "T1": dict(T=1),
        "T0": dict(T=0),
        "N0": dict(shape=[3, 0]),
        "no_grad": dict(grad=False),
        # only the spikes feed the loss (v_last/v_seq get no gradient) / only the state does
        "some_outputs": dict(used=[True, False, False, False], plif=family != "cubalif"),
        "fp16": dict(dtype="float16", shape=[3, 40], T=4),
        "bf16": dict(dtype="bfloat16", shape=[3, 40], T=4),
        "threshold_ties": dict(grid=True, T=6, shape=[4, 50], plif=family != "cubalif"),
    }[edge]
    worker(_base(family, **kw))
    if edge == "threshold_ties" and family != "cubalif":
        worker(_base(family, strict=True, **kw))
    if edge == "some_outputs":
        worker(_base(family, used=[False, True, True, False], seed=8))


@pytest.mark.parametrize("name", ["available", "modules", "no_grad_saves_nothing", "errors"])
def test_backend_integration(worker, name):
    worker({"misc": name})


def test_import_without_interpreter_or_triton():
    """``snn.kernels`` and the backend module import without triton; without CUDA and without the
    interpreter the backend is unavailable and asking for it by name is a clear error."""
    code = (
        "import sys, torch\n"
        "import snn.kernels, snn.ops.triton_backend as tb\n"
        "assert 'triton' not in sys.modules, 'importing the backend imported triton'\n"
        "from snn import ops\n"
        "if not torch.cuda.is_available():\n"
        "    assert not tb.is_available() and tb.supports(snn.neurons.get('lif'), 'cpu') is not None\n"
        "    assert 'triton' not in ops.available_backends()\n"
        "    try:\n"
        "        ops.resolve_backend('triton', torch.zeros(2, 2))\n"
        "    except RuntimeError as e:\n"
        "        assert 'triton' in str(e)\n"
        "    else:\n"
        "        raise AssertionError('no error')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]


_COMPILE = r"""
import importlib.util, os, sys
import triton, triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import snn
from snn.kernels import scan
from snn.neurons.dsr import DSR

INTS = {"T": "i32", "N": "i32", "TN": "i64", "last": "i64"}

def build(fn, dt, **consts):
    sig, cst = {}, {}
    for i, name in enumerate(fn.arg_names):
        if fn.params[i].is_constexpr:
            sig[name] = "constexpr"
            cst[(i,)] = consts[name]
        elif name in INTS:
            sig[name] = INTS[name]
        elif name in ("p_ptr", "gp_ptr"):
            sig[name] = "*fp64"
        elif name in ("st0_ptr", "stlast_ptr", "g0_ptr", "glast_ptr"):
            sig[name] = "*fp32" if consts["CDT"] == tl.float32 else "*fp64"
        else:
            sig[name] = "*" + dt
    k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=cst), target=GPUTarget("cuda", 90, 32),
                       options={"num_warps": 4, "enable_fp_fusion": False})
    assert k.asm["cubin"]
    return k.asm["ptx"]

def fwd(spec, dt, cdt, **kw):
    step = spec.triton_step()
    return build(scan.forward_kernel, dt, CHARGE=step.charge, RESET=step.reset, NS=len(spec.states),
                 NV=spec.saved, NP=len(spec.kernel_params), RECORD=spec.record_index, CDT=cdt, BLOCK=1024, **kw)

def bwd(spec, dt, cdt, **kw):
    step = spec.triton_step()
    return build(scan.backward_kernel, dt, BACKWARD=step.backward, RESTORE=step.restore, NS=len(spec.states),
                 NV=spec.saved, NP=len(spec.kernel_params), NL=max(spec.learnable, 1), RECORD=spec.record_index,
                 CDT=cdt, BLOCK=1024, **kw)

# every registered neuron, DSR's and the README's user neuron: forward and backward, float32, every flag set
path = os.path.join(os.getcwd(), "examples", "user_neuron.py")
example = importlib.util.spec_from_file_location("user_neuron_example", path)
example.loader.exec_module(importlib.util.module_from_spec(example))  # registers my_lif
done = []
for spec in [*snn.neurons.specs(), DSR]:
    if spec.triton is None:
        continue
    flags = (1 << len(spec.kernel_flags)) - 1
    fwd(spec, "fp32", tl.float32, FLAGS=flags, STRICT=False, RECORD_V=True, SAVE=True)
    bwd(spec, "fp32", tl.float32, FLAGS=flags, STRICT=False, KEEP=True, KIND=0, HAS_GS=True, HAS_GVSEQ=True,
        GLAST=(1 << len(spec.states)) - 1, SAVED_LOW=False, LEARN=spec.learnable > 0)
    done.append(spec.name)
lif = snn.neurons.get("lif")
ptx = fwd(lif, "fp32", tl.float32, FLAGS=3, STRICT=False, RECORD_V=True, SAVE=True)
assert "fma." not in ptx, "FMA contraction in the forward: spikes would differ from the reference"
# the skeleton's other dtypes: 16-bit saved values, float64, the strict comparison
fwd(snn.neurons.get("alif"), "fp32", tl.float32, FLAGS=2, STRICT=True, RECORD_V=True, SAVE=True)
bwd(lif, "bf16", tl.float32, FLAGS=2, STRICT=True, KEEP=True, KIND=0, HAS_GS=True, HAS_GVSEQ=True, GLAST=1,
    SAVED_LOW=True, LEARN=True)
bwd(snn.neurons.get("alif"), "fp64", tl.float64, FLAGS=1, STRICT=False, KEEP=True, KIND=4, HAS_GS=True,
    HAS_GVSEQ=False, GLAST=3, SAVED_LOW=False, LEARN=True)
bwd(snn.neurons.get("cubalif"), "fp16", tl.float32, FLAGS=0, STRICT=True, KEEP=True, KIND=1, HAS_GS=True,
    HAS_GVSEQ=True, GLAST=3, SAVED_LOW=True, LEARN=False)
print("compiled", " ".join(done))
"""


def test_every_neuron_compiles_for_sm90():
    """Every registered neuron's Triton step (and DSR's, and the README's user neuron), forward and backward, lowers
    to PTX and a cubin for sm_90 (no GPU needed: Triton ships ptxas), which the interpreter, lenient about types,
    does not prove; so do the skeleton's 16-bit and float64 variants, and the LIF forward has no FMA contraction."""
    try:
        from triton.backends.nvidia import compiler  # noqa: F401
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"the installed triton has no NVIDIA backend, so it cannot target CUDA here: {e}")
    import snn.neurons
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if r.returncode != 0 and "ptxas" in r.stderr and "not found" in r.stderr.lower():
        pytest.skip("triton found no ptxas to assemble sm_90 code")
    assert r.returncode == 0 and "compiled" in r.stdout, r.stderr[-4000:]
    compiled = set(r.stdout.split("compiled", 1)[1].split())
    expected = {s.name for s in snn.neurons.specs() if isinstance(s.triton, str)} | {"dsr", "my_lif"}  # snn's own
    assert expected <= compiled, f"not compiled: {sorted(expected - compiled)}"


@pytest.mark.skipif(not __import__("torch").cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1",
                    reason="needs a CUDA device (compiled kernels, not the interpreter)")
@settings(max_examples=60, **_SETTINGS)
@given(case=st.one_of(_lif_cases(), _alif_cases(), _cubalif_cases()),
       dtype=st.sampled_from(["float32", "float64", "float16", "bfloat16"]), big=st.booleans())
def test_cuda_matches_reference(case, dtype, big):
    """On a GPU: the compiled kernels on CUDA tensors against the torch reference on the same device
    (run in this process; the same checks as the interpreter cases, plus 16-bit inputs)."""
    from snn.ops import triton_backend as tri
    case = dict(case, device="cuda", dtype=dtype, block=None)
    if big:     # several thousand neurons: the real block sizes, many programs
        case["shape"] = [3, 1531]
    old = tri.BLOCK
    try:
        _worker_case(case)
    finally:
        tri.BLOCK = old
