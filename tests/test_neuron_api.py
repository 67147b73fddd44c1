"""Behaviour users rely on: step modes agree, gradients are right, bad input is refused clearly."""
import math

import pytest
import torch

import snn
from snn import surrogate as sg
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF

FACTORIES = {
    "if": lambda **kw: IF(**kw),
    "lif": lambda **kw: LIF(tau=3.0, **kw),
    "lif_soft": lambda **kw: LIF(tau=2.5, v_reset=None, decay_input=False, **kw),
    "plif": lambda **kw: PLIF(init_tau=2.0, **kw),
    "alif": lambda **kw: ALIF(tau=2.0, rho=0.8, beta=0.3, **kw),
    "cubalif": lambda **kw: CUBALIF(du=0.3, dv=0.2, v_threshold=1.0, bias=0.1, **kw),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_single_step_equals_multi_step(name):
    x = torch.rand(9, 3, 4) * 2
    multi = FACTORIES[name](step_mode="m")
    single = FACTORIES[name](step_mode="s")
    if hasattr(multi, "w"):
        single.load_state_dict(multi.state_dict())
    s_multi = multi(x)
    s_single = torch.stack([single(xt) for xt in x])
    assert torch.equal(s_multi, s_single)
    torch.testing.assert_close(multi.v, single.v)


@pytest.mark.parametrize("name", FACTORIES)
def test_multi_step_in_chunks_continues_state(name):
    x = torch.rand(8, 2, 5) * 2
    whole = FACTORIES[name](step_mode="m")
    chunks = FACTORIES[name](step_mode="m")
    assert torch.equal(whole(x), torch.cat([chunks(x[:3]), chunks(x[3:])]))


@pytest.mark.parametrize("name", FACTORIES)
def test_gradcheck_float64_with_smooth_surrogate(name):
    # The smooth relaxation (spiking=False) makes the whole neuron differentiable, so autograd's
    # backward through charge, fire and reset is checked against finite differences.
    neuron = FACTORIES[name](step_mode="m", surrogate=sg.Sigmoid(2.0, spiking=False))
    x = (torch.rand(5, 2, 3, dtype=torch.float64) * 2).requires_grad_()

    def f(inp):
        snn.reset(neuron)
        return neuron(inp)

    assert torch.autograd.gradcheck(f, (x,))


def test_plif_tau_gets_a_gradient_and_learns():
    n = PLIF(init_tau=4.0, step_mode="m")
    x = torch.rand(6, 8, 10) * 2
    n(x).sum().backward()
    assert n.w.grad is not None and n.w.grad.abs() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_run(dtype):
    n = LIF(step_mode="m")
    s = n(torch.rand(4, 3, dtype=dtype) * 3)
    assert s.dtype == dtype and set(s.unique().tolist()) <= {0.0, 1.0}


def test_empty_batch():
    assert LIF(step_mode="m")(torch.zeros(4, 0, 3)).shape == (4, 0, 3)


# -- bad input ------------------------------------------------------------------------------------
def test_wrong_rank():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        LIF(step_mode="m")(torch.rand(5))
    with pytest.raises(ValueError, match=r"\[B, \.\.\.\]"):
        LIF(step_mode="s")(torch.tensor(1.0))


def test_wrong_dtype():
    with pytest.raises(TypeError, match="floating-point"):
        LIF()(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        LIF()([1.0, 2.0])


def test_nan_input_is_refused():
    x = torch.rand(3, 2)
    x[1, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        LIF(step_mode="m")(x)
    snn.checks.set_finite_checks(False)
    try:
        LIF(step_mode="m")(x)
    finally:
        snn.checks.set_finite_checks(True)


def test_batch_change_without_reset():
    n = LIF()
    n(torch.rand(4, 3))
    with pytest.raises(ValueError, match="reset"):
        n(torch.rand(5, 3))
    snn.reset(n)
    n(torch.rand(5, 3))


@pytest.mark.parametrize("make,match", [
    (lambda: LIF(tau=0.5), r"tau must lie in \[1.0, inf\)"),
    (lambda: LIF(tau=math.inf), "tau must be finite"),
    (lambda: PLIF(init_tau=1.0), r"init_tau must lie in \(1.0, inf\)"),
    (lambda: LIF(v_threshold=-1.0, v_reset=None), "v_threshold must be > 0"),
    (lambda: LIF(v_threshold=1.0, v_reset=1.5), "below v_threshold"),
    (lambda: IF(v_threshold=math.nan), "v_threshold must be finite"),
    (lambda: ALIF(rho=1.0), r"rho must lie in \[0.0, 1.0\)"),
    (lambda: ALIF(beta=-0.1), "beta must lie in"),
    (lambda: CUBALIF(du=1.5), r"du must lie in \[0.0, 1.0\]"),
    (lambda: CUBALIF(v_threshold=0.0), r"v_threshold must lie in \(0.0, inf\)"),
    (lambda: LIF(step_mode="x"), "step_mode must be"),
    (lambda: LIF(backend="gpu"), "unknown backend"),
])
def test_bad_parameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unavailable_backend_is_an_error_not_a_fallback():
    missing = [b for b in snn.ops.BACKENDS if b not in snn.ops.available_backends()]
    if not missing:
        pytest.skip("every backend is available on this machine")
    n = LIF(backend=missing[0], step_mode="m")
    with pytest.raises(RuntimeError, match="not available|cannot run"):
        n(torch.rand(2, 3))


def test_auto_says_which_backend_ran():
    n = LIF(step_mode="m")
    n(torch.rand(2, 3))
    assert n.last_backend in snn.ops.available_backends()
    assert snn.ops.resolve_backend("auto", torch.rand(2)) == n.last_backend
    with pytest.raises(ValueError, match="unknown backend"):
        snn.ops.resolve_backend("fpga", torch.rand(2))


def test_non_spiking_surrogate_needs_torch_backend():
    n = LIF(backend="cpp", surrogate=sg.Sigmoid(spiking=False), step_mode="m")
    with pytest.raises(RuntimeError, match="torch backend"):
        n(torch.rand(2, 3))


def _device_for(backend: str) -> str:
    """Where ``backend`` runs: CUDA tensors for 'cuda' (and for 'triton' where a GPU is present), else CPU."""
    return "cuda" if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()) else "cpu"


@pytest.mark.parametrize("backend", snn.ops.available_backends())
@pytest.mark.parametrize("family", ["lif", "alif", "cubalif"])
def test_zero_time_steps_pass_the_state_through(backend, family):
    dev = _device_for(backend)
    x = torch.zeros(0, 2, 3, device=dev)
    v0 = torch.rand(2, 3, device=dev)
    zeros = torch.zeros(2, 3, device=dev)
    common = dict(v_threshold=1.0, detach_reset=False, surrogate=sg.Sigmoid())
    if family == "lif":
        s, v, _ = snn.ops.lif_multistep(x, v0, 0.5, backend=backend, v_reset=0.0, decay_input=True, **common)
    elif family == "alif":
        s, v, _, _ = snn.ops.alif_multistep(x, v0, zeros, 0.5, backend=backend, rho=0.5, beta=0.1, v_reset=0.0,
                                            decay_input=True, **common)
    else:
        s, _, v, _ = snn.ops.cubalif_multistep(x, zeros, v0, backend=backend, du=0.5, dv=0.5, bias=0.0, **common)
    assert s.shape == (0, 2, 3)
    torch.testing.assert_close(v, v0)


def test_finite_check_helpers():
    assert snn.checks.all_finite(torch.full((4,), 1e308, dtype=torch.float64))  # the sum overflows, not x
    assert not snn.checks.all_finite(torch.tensor([1.0, math.inf]))
    with snn.checks.finite_checks(False):
        assert not snn.checks.finite_checks_enabled()
    assert snn.checks.finite_checks_enabled()
