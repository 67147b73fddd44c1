"""Neuron modules on bad input: a clear error (type and a message naming the argument and what is accepted),
raised where the parameter is declared or before any work starts, never a raw torch error or a silently
wrong result."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from badinput import expect_clear_error

import snn
from snn.train.ottt import detach_states
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF

nan, inf = math.nan, math.inf

# (constructor call, exception type, words the message must contain)
BAD_PARAMETERS = {
    "cubalif_bias_nan": (lambda: CUBALIF(bias=nan), ValueError, ["bias", "finite"]),
    "cubalif_bias_inf": (lambda: CUBALIF(bias=-inf), ValueError, ["bias", "finite"]),
    "lif_v_threshold_inf": (lambda: LIF(v_threshold=inf), ValueError, ["v_threshold", "finite"]),
    "if_v_threshold_nan_soft_reset": (lambda: IF(v_threshold=nan, v_reset=None), ValueError, ["v_threshold"]),
    "cubalif_v_threshold_inf": (lambda: CUBALIF(v_threshold=inf), ValueError, ["v_threshold", "finite"]),
    "cubalif_v_threshold_zero": (lambda: CUBALIF(v_threshold=0.0), ValueError, ["v_threshold", "(0.0, inf)"]),
    "lif_tau_nan": (lambda: LIF(tau=nan), ValueError, ["tau", "finite"]),
    "lif_tau_below_one": (lambda: LIF(tau=0.5), ValueError, ["tau", "[1.0, inf)"]),
    "lif_tau_string": (lambda: LIF(tau="2"), TypeError, ["tau", "real number"]),
    "plif_init_tau_nan": (lambda: PLIF(init_tau=nan), ValueError, ["init_tau", "finite"]),
    "plif_init_tau_one": (lambda: PLIF(init_tau=1.0), ValueError, ["init_tau", "(1.0, inf)"]),
    "alif_rho_nan": (lambda: ALIF(rho=nan), ValueError, ["rho", "finite"]),
    "alif_rho_one": (lambda: ALIF(rho=1.0), ValueError, ["rho", "[0.0, 1.0)"]),
    "alif_beta_inf": (lambda: ALIF(beta=inf), ValueError, ["beta", "finite"]),
    "alif_beta_negative": (lambda: ALIF(beta=-0.5), ValueError, ["beta", "[0.0, inf)"]),
    "cubalif_du_nan": (lambda: CUBALIF(du=nan), ValueError, ["du", "finite"]),
    "cubalif_dv_above_one": (lambda: CUBALIF(dv=1.5), ValueError, ["dv", "[0.0, 1.0]"]),
    "lif_v_reset_equals_threshold": (lambda: LIF(v_threshold=1.0, v_reset=1.0), ValueError,
                                     ["v_reset", "below v_threshold"]),
    "if_v_reset_above_threshold": (lambda: IF(v_threshold=0.5, v_reset=0.8), ValueError,
                                   ["v_reset", "below v_threshold"]),
    "lif_v_reset_nan": (lambda: LIF(v_reset=nan), ValueError, ["v_reset", "finite"]),
    "lif_soft_reset_negative_threshold": (lambda: LIF(v_threshold=-1.0, v_reset=None), ValueError,
                                          ["v_threshold", "> 0"]),
    "lif_v_threshold_complex": (lambda: LIF(v_threshold=1 + 1j), TypeError, ["v_threshold", "real number"]),
    "lif_decay_input_string": (lambda: LIF(decay_input="False"), TypeError, ["decay_input", "True or False"]),
    "if_detach_reset_int": (lambda: IF(detach_reset=1), TypeError, ["detach_reset", "True or False"]),
    "alif_strict_threshold_string": (lambda: ALIF(strict_threshold="yes"), TypeError,
                                     ["strict_threshold", "True or False"]),
    "lif_store_v_seq_none": (lambda: LIF(store_v_seq=None), TypeError, ["store_v_seq", "True or False"]),
    "cubalif_not_strict": (lambda: CUBALIF(strict_threshold=False), ValueError, ["strict_threshold", "V > V_th"]),
    "lif_unknown_surrogate": (lambda: LIF(surrogate="relu"), ValueError, ["surrogate", "accepted"]),
    "lif_unknown_backend": (lambda: LIF(backend="fpga"), ValueError, ["backend", "accepted"]),
    "lif_bad_step_mode": (lambda: LIF(step_mode="multi"), ValueError, ["step_mode", "'s'", "'m'"]),
}


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_bad_parameter_is_refused_where_declared(case):
    make, exc, names = BAD_PARAMETERS[case]
    expect_clear_error(make, exc, *names)


def test_numpy_flags_and_numbers_are_accepted():
    n = ALIF(tau=np.float32(2.0), rho=np.float64(0.5), strict_threshold=np.bool_(True), detach_reset=np.True_)
    assert n.tau == 2.0 and n.rho == 0.5 and n.strict_threshold is True and n.detach_reset is True


# -- inputs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [LIF, ALIF, CUBALIF], ids=lambda m: m.__name__)
@pytest.mark.parametrize("mode", ["s", "m"])
def test_complex_input_is_refused_not_cast(make, mode):
    x = torch.ones(2, 3, dtype=torch.complex64)
    expect_clear_error(lambda: make(step_mode=mode)(x), TypeError, make.__name__, "input", "complex")


@pytest.mark.parametrize("make", [IF, PLIF, ALIF, CUBALIF], ids=lambda m: m.__name__)
def test_zero_length_sequence_is_an_error_naming_the_shape(make):
    n = make(step_mode="m")
    expect_clear_error(lambda: n(torch.zeros(0, 4, 3)), ValueError, make.__name__, "(0, 4, 3)", "T = 0", "T >= 1")


def test_integer_input_is_refused():
    expect_clear_error(lambda: LIF()(torch.ones(3, dtype=torch.int64)), TypeError, "LIF", "floating-point")


# -- a second backward pass through a state that was not reset -------------------------------------------
BACKENDS = [b for b in ("torch", "cpp") if b in snn.ops.available_backends()]


def _two_batches(make, backend, mode, reset_between, retain=False):
    n = make(step_mode=mode, backend=backend)
    for _ in range(2):
        x = torch.rand(4, 2, 5, requires_grad=True) * 1.5
        s = n(x) if mode == "m" else torch.stack([n(xt) for xt in x])
        s.sum().backward(retain_graph=retain)
        if reset_between:
            snn.reset(n)
    return n


@pytest.mark.parametrize("make", [LIF, ALIF, CUBALIF], ids=lambda m: m.__name__)
@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_through_a_stale_state_says_to_reset(make, backend, mode):
    """Without snn.reset between batches the second backward reaches the first batch's freed graph: the error
    names the neuron and the fix instead of torch's 'Trying to backward through the graph a second time'."""
    err = expect_clear_error(lambda: _two_batches(make, backend, mode, reset_between=False), RuntimeError,
                             make.__name__, "snn.reset(net)", "between batches")
    assert "second time" not in str(err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_detach_and_retain_graph_still_work(backend):
    _two_batches(LIF, backend, "m", reset_between=True)
    _two_batches(LIF, backend, "s", reset_between=False, retain=True)  # the first graph was kept: legitimate
    n = LIF(step_mode="m", backend=backend)
    for _ in range(2):  # the state carried on without a gradient
        n(torch.rand(3, 2, 5, requires_grad=True)).sum().backward()
        detach_states(n)
