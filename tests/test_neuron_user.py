"""A neuron written by a user, outside snn's sources: the README's example (examples/user_neuron.py), a spec with
a torch step, a C++ functor as a source string and Triton functions. backend='cpp' runs its C++ step compiled on
first use (snn.ops.compile) and cached on disk, equal to the torch reference; its Triton step runs in the generic
Triton skeleton (tests/test_conformance.py checks it with every other registered spec, and
tests/test_kernels_triton.py compiles it for sm_90). The example runs as printed. A bad spec, a failed build or a
missing compiler is an error naming the spec (with the compiler's message), never a silent fallback to the torch
backend.

The first run compiles the functor (about a minute on 2 busy cores); later runs load it from the cache in well
under a second.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from badinput import expect_clear_error

import snn
from snn import surrogate as sg
from snn.neurons import CppStep, SpecError, State
from snn.ops import cpp_backend

if not cpp_backend.is_available():  # pragma: no cover
    pytest.skip("snn._C is not built (make build)", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import user_neuron  # noqa: E402 - the user's code: registers the spec my_lif, binds MyLIF

MY_LIF, MyLIF = user_neuron.MY_LIF, user_neuron.MyLIF
CALLS = {"charge": 0}


def _counted_charge(x, st, p, f):
    CALLS["charge"] += 1
    return MY_LIF.charge(x, st, p, f)


COUNTED = dataclasses.replace(MY_LIF, name="my_lif_counted", charge=_counted_charge)  # the same C++ step


def test_the_readme_example_is_the_example_file_and_runs():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    body = open(user_neuron.__file__, encoding="utf-8").read().split('"""', 2)[2].strip()
    assert body in readme, "README's 'Your own neuron' differs from examples/user_neuron.py"
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, user_neuron.__file__], env=env, capture_output=True, text=True, timeout=600,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cpp equals torch: True" in r.stdout, r.stdout
    try:
        import triton  # noqa: F401
    except ImportError:  # pragma: no cover - triton is a dev dependency
        return
    assert "triton equals torch: True" in r.stdout, r.stdout


def _run(backend, x, surrogate, detach):
    xs = x.detach().clone().requires_grad_()
    v0 = torch.full(x.shape[1:], 0.2, dtype=x.dtype, requires_grad=True)
    s, (v,), vs = snn.ops.run(COUNTED, xs, (v0,), (0.8, 0.6), surrogate=surrogate, detach_reset=detach,
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
    assert cpp_backend.kernel(COUNTED).forward is C.load(COUNTED).MyLIFStep_forward  # the compiled module's
    ref = _run("torch", x, sg.ATan(), detach)
    assert CALLS["charge"] == 7
    assert torch.equal(got[0], ref[0]), "spikes differ from the torch reference"
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for a, b in zip((got[1], got[2], *got[3]), (ref[1], ref[2], *ref[3])):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_the_compiled_module_is_cached_on_disk():
    from snn.ops import compile as C
    C.load(MY_LIF)
    built = [d for d in os.listdir(C.cache_dir()) if d.startswith("snn_step_MyLIFStep_")]
    assert built, f"nothing cached under {C.cache_dir()}"


def test_a_user_module_class_runs_its_spec_on_cpp():
    n = MyLIF(lam=0.7, step_mode="m", backend="cpp")
    r = MyLIF(lam=0.7, step_mode="m", backend="torch")
    x = torch.rand(6, 2, 9) * 1.5
    assert torch.equal(n(x), r(x)) and n.last_backend == "cpp"
    assert snn.neurons.spec_of(n) is MY_LIF
    expect_clear_error(lambda: MyLIF(lam=1.5), ValueError, "MyLIF", "lam", "[0.0, 1.0]")


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
    "header_and_source": (dict(cpp=CppStep("MyLIFStep", header="x.h", source="y")), ["bad", "exactly one"]),
    "charge_not_callable": (dict(charge=None), ["bad", "charge", "callable"]),
    "saved_zero": (dict(saved=0), ["bad", "saved=0"]),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_an_incomplete_or_inconsistent_spec_is_an_error_naming_it(case):
    change, names = BAD_SPECS[case]
    expect_clear_error(lambda: dataclasses.replace(MY_LIF, name="bad", **change), SpecError, *names)


def test_a_functor_that_disagrees_with_its_spec_is_an_error_naming_both():
    two = dataclasses.replace(MY_LIF, name="my_lif_two_states", states=(State("v"), State("w")))
    expect_clear_error(lambda: snn.ops.run(two, torch.rand(3, 4), (0.0, 0.0), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="cpp"),
                       SpecError, "my_lif_two_states", "MyLIFStep", "states (functor 1, spec 2)")


def test_a_failed_build_is_an_error_with_the_compiler_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))
    broken = dataclasses.replace(MY_LIF, name="user_broken",
                                 cpp=CppStep("BrokenStep", source="template <typename T, unsigned F> struct "
                                                                  "BrokenStep { this is not C++; };"))
    err = expect_clear_error(lambda: snn.ops.run(broken, torch.rand(3, 4), (0.0,), (0.8, 0.6),
                                                 surrogate=sg.ATan(), backend="cpp"),
                             SpecError, "user_broken", "BrokenStep", "failed", "error", unchanged=[tmp_path])
    assert "this is not C++" in str(err) or "expected" in str(err)


def test_no_compiler_is_an_error_naming_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    other = dataclasses.replace(MY_LIF, name="user_uncompiled",
                                cpp=CppStep("MyLIFStep", source=user_neuron.CPP + "\n// another build\n"))
    expect_clear_error(lambda: snn.ops.run(other, torch.rand(3, 4), (0.0,), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="auto"),
                       SpecError, "user_uncompiled", "no C++ compiler", "no-such-compiler", unchanged=[tmp_path])


def test_a_spec_without_a_cpp_step_is_refused_by_cpp_and_runs_on_torch():
    plain = dataclasses.replace(MY_LIF, name="user_plain", cpp=None)
    expect_clear_error(lambda: snn.ops.run(plain, torch.rand(3, 4), (0.0,), (0.8, 0.6), surrogate=sg.ATan(),
                                           backend="cpp"), RuntimeError, "user_plain", "no C++ step")
    assert snn.ops.resolve_backend("auto", torch.rand(3, 4), plain) == "torch"
