"""A neuron written by a user, outside snn's sources: a spec with a torch step and a C++ functor as a source
string gets the fused CPU loops, compiled on first use (snn.ops.compile) and cached on disk; backend='cpp'
runs that compiled code, equal to the torch reference. Its Triton step (jit functions in this file) runs in
the generic Triton skeleton: tests/test_conformance.py checks it with every other registered spec. A bad spec, a failed build or a missing compiler is an
error naming the spec (with the compiler's message), never a silent fallback to the torch backend.

The first run compiles the functor (about 45 s on 2 cores); later runs load it from the cache in well under
a second.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from badinput import expect_clear_error

import snn
from snn import surrogate as sg
from snn.neurons import CppStep, NeuronSpec, Param, SpecError, State, TritonStep
from snn.ops import cpp_backend

if not cpp_backend.is_available():  # pragma: no cover
    pytest.skip("snn._C is not built (make build)", allow_module_level=True)

LEAKY_CPP = r"""
// V ← λ·V + X;  S = Θ(V - V_th);  V ← V - V_th·S (soft reset).  Saved: m = V - V_th.
template <typename T, unsigned FLAGS>
struct LeakyStep {
  static constexpr int kStates = 1, kSaved = 1, kParams = 2, kLearnable = 0, kRecord = 0, kFlags = 0;
  T lam, vth;
  SNN_HD explicit LeakyStep(const double* p) : lam(T(p[0])), vth(T(p[1])) {}
  SNN_HD void charge(T x, T* st, T& h, T& theta, T*) const {
    h = lam * st[0] + x;
    theta = vth;
  }
  SNN_HD void reset(T h, T theta, T s, T* st) const { st[0] = h - theta * s; }
  template <bool LEARN>
  SNN_HD T backward(const T*, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T gh = g[0] + (gs - keep * g[0] * vth) * sg;
    g[0] = gh * lam;
    return gh;
  }
};
"""

try:  # the Triton step is optional: without triton the spec has none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton is a dev dependency
    triton = None

if triton is not None:
    @triton.jit
    def leaky_charge_tl(x, st, p, FLAGS: tl.constexpr):
        return p[0] * st[0] + x, p[1], st, ()

    @triton.jit
    def leaky_reset_tl(h, theta, s, st, p, FLAGS: tl.constexpr):
        return (h - theta * s,)

    @triton.jit
    def leaky_backward_tl(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr,
                          LEARN: tl.constexpr):
        if KEEP:
            gh = g[0] + (gs - g[0] * p[1]) * sg
        else:
            gh = g[0] + gs * sg
        return gh, (gh * p[0],), ()

    LEAKY_TRITON = TritonStep(leaky_charge_tl, leaky_reset_tl, leaky_backward_tl)
else:  # pragma: no cover
    LEAKY_TRITON = None

CALLS = {"charge": 0}


def leaky_charge(x, st, p, f):
    CALLS["charge"] += 1
    return p.lam * st[0] + x, p.v_threshold, st


def leaky_reset(h, theta, s, sr, st, p, f):
    return (h - theta * sr,)


LEAKY = NeuronSpec(
    name="user_leaky", states=(State("v"),),
    params=(Param("lam", 0.9, low=0.0, high=1.0), Param("v_threshold", 1.0, low=0.0, low_open=True)),
    kernel_params=("lam", "v_threshold"), charge=leaky_charge, reset=leaky_reset,
    cpp=CppStep("LeakyStep", source=LEAKY_CPP), triton=LEAKY_TRITON)


class Leaky(snn.neuron.BaseNeuron):
    """The user's module: the spec is all it declares."""

    spec = LEAKY


def _run(backend, x, surrogate, detach):
    xs = x.detach().clone().requires_grad_()
    v0 = torch.full(x.shape[1:], 0.2, dtype=x.dtype, requires_grad=True)
    s, (v,), vs = snn.ops.run(LEAKY, xs, (v0,), (0.8, 0.6), surrogate=surrogate, detach_reset=detach,
                              record_v=True, backend=backend)
    w = torch.randn(s.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(x.dtype)
    grads = torch.autograd.grad((s * w).sum() + v.sum() + 0.5 * vs.sum(), (xs, v0))
    return s, v, vs, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("detach", [False, True])
def test_cpp_runs_the_compiled_step_and_matches_the_reference(dtype, detach):
    x = torch.randn(7, 3, 41, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)
    CALLS["charge"] = 0
    got = _run("cpp", x, sg.ATan(), detach)
    assert CALLS["charge"] == 0, "backend='cpp' ran the torch step"
    from snn.ops import compile as C
    assert cpp_backend.kernel(LEAKY).forward is C.load(LEAKY).LeakyStep_forward  # the compiled module's
    ref = _run("torch", x, sg.ATan(), detach)
    assert CALLS["charge"] == 7
    assert torch.equal(got[0], ref[0]), "spikes differ from the torch reference"
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for a, b in zip((got[1], got[2], *got[3]), (ref[1], ref[2], *ref[3])):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_the_compiled_module_is_cached_on_disk():
    import os

    from snn.ops import compile as C
    C.load(LEAKY)
    built = [d for d in os.listdir(C.cache_dir()) if d.startswith("snn_step_LeakyStep_")]
    assert built, f"nothing cached under {C.cache_dir()}"


def test_a_user_module_class_runs_its_spec_on_cpp():
    n = Leaky(lam=0.7, step_mode="m", backend="cpp")
    r = Leaky(lam=0.7, step_mode="m", backend="torch")
    x = torch.rand(6, 2, 9) * 1.5
    assert torch.equal(n(x), r(x)) and n.last_backend == "cpp"
    assert snn.neurons.spec_of(n) is LEAKY
    expect_clear_error(lambda: Leaky(lam=1.5), ValueError, "Leaky", "lam", "[0.0, 1.0]")


def test_a_subclass_without_its_own_spec_is_not_taken_for_its_base():
    class Tweaked(snn.neuron.LIF):
        pass
    expect_clear_error(lambda: snn.neurons.spec_of(Tweaked()), SpecError, "Tweaked", "not a registered neuron",
                       "LIF")


# -- bad specs and builds ---------------------------------------------------------------------------------
BAD_SPECS = {
    "no_states": (dict(states=()), ["bad", "states"]),
    "record_not_a_state": (dict(record="u"), ["bad", "record", "'u'"]),
    "state_init_unknown": (dict(states=(State("v", init="v_rest"),)), ["bad", "v_rest", "kernel parameter"]),
    "learnable_beyond_params": (dict(learnable=3), ["bad", "learnable=3"]),
    "header_and_source": (dict(cpp=CppStep("LeakyStep", header="x.h", source="y")), ["bad", "exactly one"]),
    "charge_not_callable": (dict(charge=None), ["bad", "charge", "callable"]),
    "saved_zero": (dict(saved=0), ["bad", "saved=0"]),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_an_incomplete_or_inconsistent_spec_is_an_error_naming_it(case):
    change, names = BAD_SPECS[case]
    expect_clear_error(lambda: dataclasses.replace(LEAKY, name="bad", **change), SpecError, *names)


def test_a_functor_that_disagrees_with_its_spec_is_an_error_naming_both():
    two = dataclasses.replace(LEAKY, name="leaky_two_states", states=(State("v"), State("w")))
    expect_clear_error(lambda: snn.ops.run(two, torch.rand(3, 4), (0.0, 0.0), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="cpp"),
                       SpecError, "leaky_two_states", "LeakyStep", "states (functor 1, spec 2)")


def test_a_failed_build_is_an_error_with_the_compiler_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))
    broken = dataclasses.replace(LEAKY, name="user_broken",
                                 cpp=CppStep("BrokenStep", source="template <typename T, unsigned F> struct "
                                                                  "BrokenStep { this is not C++; };"))
    err = expect_clear_error(lambda: snn.ops.run(broken, torch.rand(3, 4), (0.0,), (0.8, 0.6),
                                                 surrogate=sg.ATan(), backend="cpp"),
                             SpecError, "user_broken", "BrokenStep", "failed", "error", unchanged=[tmp_path])
    assert "this is not C++" in str(err) or "expected" in str(err)


def test_no_compiler_is_an_error_naming_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    other = dataclasses.replace(LEAKY, name="user_uncompiled",
                                cpp=CppStep("LeakyStep", source=LEAKY_CPP + "\n// another build\n"))
    expect_clear_error(lambda: snn.ops.run(other, torch.rand(3, 4), (0.0,), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="auto"),
                       SpecError, "user_uncompiled", "no C++ compiler", "no-such-compiler", unchanged=[tmp_path])


def test_a_spec_without_a_cpp_step_is_refused_by_cpp_and_runs_on_torch():
    plain = dataclasses.replace(LEAKY, name="user_plain", cpp=None)
    expect_clear_error(lambda: snn.ops.run(plain, torch.rand(3, 4), (0.0,), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="cpp"), RuntimeError, "user_plain", "no C++ step")
    assert snn.ops.resolve_backend("auto", torch.rand(3, 4), plain) == "torch"
