"""QIF, EIF and Izhikevich: SpikingJelly 2.0's ``QIFNode``, ``EIFNode`` and ``IzhikevichNode``, checked against
SpikingJelly itself (spikes exactly, states and gradients within 1e-5) on every CPU backend; the bound that keeps
a diverging neuron finite where SpikingJelly turns ``inf``/``nan``; parameter validation; compiled code on
``backend='cpp'``; export refused with the reason. Backends, dtypes, surrogates and step modes against snn's own
reference are the conformance suite's (tests/test_conformance.py).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import snn
from snn import surrogate as sg
from snn.neuron import EIF, QIF, Izhikevich

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")

pytestmark = pytest.mark.usefixtures("one_thread")

LIMIT = 2.0 ** 100
BACKENDS = ("torch", "cpp")
SURROGATES = {"sigmoid": (sg.Sigmoid, sj_surrogate.Sigmoid), "atan": (sg.ATan, sj_surrogate.ATan),
              "erf": (sg.Erf, sj_surrogate.Erf)}
# snn class, SpikingJelly class, the names of the parameters the two share
FAMILIES = {
    "qif": (QIF, "QIFNode", ("tau", "v_c", "a0", "v_threshold", "v_rest", "v_reset")),
    "eif": (EIF, "EIFNode", ("tau", "delta_T", "theta_rh", "v_threshold", "v_rest", "v_reset")),
    "izhikevich": (Izhikevich, "IzhikevichNode",
                   ("tau", "v_c", "a0", "v_threshold", "v_reset", "v_rest", "w_rest", "tau_w", "a", "b")),
}


def _params(draw_float, hard: bool) -> dict:
    """Parameters in the ranges both libraries accept (SpikingJelly: tau > 1; hard reset V_reset <= V_rest)."""
    vth = draw_float(0.3, 2.0)
    v_reset = vth - draw_float(0.05, 1.5) if hard else None
    v_rest = draw_float(-0.5, 0.2)
    if hard:
        v_rest = max(v_rest, v_reset)
    return dict(tau=draw_float(1.1, 10.0), v_threshold=vth, v_reset=v_reset, v_rest=v_rest,
                v_c=v_rest + draw_float(0.1, 1.5), a0=draw_float(0.1, 2.0), delta_T=draw_float(0.1, 2.0),
                theta_rh=draw_float(0.0, 1.5), a=draw_float(-0.5, 0.5), b=draw_float(0.0, 0.5),
                tau_w=draw_float(1.0, 5.0), w_rest=draw_float(-0.2, 0.2))


@st.composite
def cases(draw):
    def draw_float(lo, hi):
        return draw(st.floats(lo, hi))
    return dict(kind=draw(st.sampled_from(sorted(FAMILIES))), hard=(hard := draw(st.booleans())),
                params=_params(draw_float, hard), detach_reset=draw(st.booleans()),
                surrogate=draw(st.sampled_from(sorted(SURROGATES))), backend=draw(st.sampled_from(BACKENDS)),
                dtype=draw(st.sampled_from([torch.float32, torch.float64])), T=draw(st.integers(1, 12)),
                shape=draw(st.sampled_from([(3,), (2, 5), (4, 2, 3)])), seed=draw(st.integers(0, 2**16)))


def build(kind, params, *, surrogate="sigmoid", detach_reset=False, backend="torch", step_mode="m"):
    """The snn neuron and SpikingJelly's for the same parameters."""
    ours_cls, theirs_name, names = FAMILIES[kind]
    ours_sg, theirs_sg = SURROGATES[surrogate]
    kw = {n: params[n] for n in names}
    ours = ours_cls(surrogate=ours_sg(), detach_reset=detach_reset, step_mode=step_mode, backend=backend, **kw)
    theirs = getattr(sj_neuron, theirs_name)(surrogate_function=theirs_sg(), detach_reset=detach_reset,
                                             step_mode=step_mode, store_v_seq=step_mode == "m", **kw)
    return ours, theirs


def final_states(neuron, kind):
    return (neuron.v, neuron.w) if kind == "izhikevich" else (neuron.v,)


def run_with_grad(neuron, kind, x, weight):
    """Spikes, final states and ∂L/∂X of the loss Σ S·weight + Σ final states (every gradient path)."""
    x = x.detach().clone().requires_grad_()
    s = neuron(x)
    states = final_states(neuron, kind)
    ((s * weight).sum() + sum(v.sum() for v in states)).backward()
    return s.detach(), tuple(v.detach() for v in states), x.grad


@settings(max_examples=80, deadline=None)
@given(cases())
def test_matches_spikingjelly(case):
    """Where SpikingJelly's membrane stays finite and below the bound, every spike is SpikingJelly's and the
    final state and the input gradient agree to 1e-5 (float32) / 1e-10 (float64), on every CPU backend."""
    kind, p = case["kind"], case["params"]
    ours, theirs = build(kind, p, surrogate=case["surrogate"], detach_reset=case["detach_reset"],
                         backend=case["backend"])
    g = torch.Generator().manual_seed(case["seed"])
    vth = p["v_threshold"]
    x = (torch.rand((case["T"], *case["shape"]), generator=g, dtype=torch.float64) * 3 * vth - vth / 2)
    x = x.to(case["dtype"])
    weight = torch.rand(x.shape, generator=g, dtype=case["dtype"])
    s_theirs, st_theirs, gx_theirs = run_with_grad(theirs, kind, x, weight)
    v_seq = theirs.v_seq.detach()
    assume(bool(torch.isfinite(v_seq).all()) and float(v_seq.abs().max()) < LIMIT)
    s_ours, st_ours, gx_ours = run_with_grad(ours, kind, x, weight)
    assert torch.equal(s_ours, s_theirs)
    tol = 1e-5 if case["dtype"] == torch.float32 else 1e-10
    for a, b in zip(st_ours, st_theirs):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    torch.testing.assert_close(gx_ours, gx_theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_defaults_single_step_match_spikingjelly(kind, backend):
    """SpikingJelly's default parameters, one step at a time, carrying the state between calls."""
    ours = FAMILIES[kind][0](step_mode="s", backend=backend)
    theirs = getattr(sj_neuron, FAMILIES[kind][1])(step_mode="s")
    x = torch.rand(10, 4, 5, generator=torch.Generator().manual_seed(1)) * 2
    for t in range(x.shape[0]):
        assert torch.equal(ours(x[t]), theirs(x[t]))
    for a, b in zip(final_states(ours, kind), final_states(theirs, kind)):
        torch.testing.assert_close(a, b)


def test_izhikevich_adaptation_reads_the_spike_with_its_surrogate_gradient():
    """W[t] = W + (a·(H - V_rest) - W)/tau_w + b·S[t]: with a = 0 the only path from X to the final W is b·S, so
    ∂W/∂X = b·σ'(H - V_th)/tau, and detach_reset (which detaches S in V's reset only) keeps it."""
    h = 0.0 + (1.5 + 1.0 * (0.0 + 0.1) * (0.0 - 0.8)) / 2.0  # defaults: V_reset 0, V_rest -0.1, V_c 0.8, tau 2
    expected = 0.5 * float(sg.Sigmoid().derivative(torch.tensor(h - 1.0))) / 2.0
    for detach in (False, True):
        n = Izhikevich(a=0.0, b=0.5, detach_reset=detach, step_mode="m")
        x = torch.full((1, 3), 1.5, requires_grad=True)
        assert n(x).sum() == 0
        n.w.sum().backward()
        torch.testing.assert_close(x.grad, torch.full((1, 3), expected), rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------------------------
# Divergence: the bound keeps the state and the gradients finite where SpikingJelly's turn inf / nan
# ------------------------------------------------------------------------------------------------------------
DIVERGING = {  # snn class, SpikingJelly class, parameters, input, the spikes of the first neuron
    # soft reset: the quadratic term outgrows the subtracted threshold (SpikingJelly: V = inf, gradients nan)
    "qif_soft": (QIF, "QIFNode", dict(v_reset=None), torch.full((20, 3), 5.0), [1.0] * 20),
    # soft reset after a large input: exp((V - θ_rh)/Δ_T) overflows (SpikingJelly: V = nan, the neuron silent)
    "eif_soft": (EIF, "EIFNode", dict(v_reset=None), torch.tensor([[200.0], [0.0], [0.0], [0.0]]).expand(4, 3),
                 [1.0] * 4),
    # hard reset: V = 0.99 lies 95·Δ_T above θ_rh, exp overflows (SpikingJelly: V = V_reset·1 + inf·0 = nan)
    "eif_hard": (EIF, "EIFNode", dict(delta_T=0.002), torch.tensor([[2.08], [0.0], [0.0]]).expand(3, 3),
                 [0.0, 1.0, 0.0]),
    # soft reset, strong input: V and the adaptation current W run away together
    "izhikevich_soft": (Izhikevich, "IzhikevichNode", dict(v_reset=None, a=2.0), torch.full((20, 3), 5.0),
                        [1.0] * 20),
}


def _kind(cls) -> str:
    return cls.__name__.lower()


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_diverging_inputs_make_spikingjelly_non_finite(case):
    """The inputs below do reach the regime the bound is for: SpikingJelly's state or gradient is inf/nan."""
    cls, theirs_name, kw, x, _ = DIVERGING[case]
    theirs = getattr(sj_neuron, theirs_name)(step_mode="m", **kw)
    _, states, gx = run_with_grad(theirs, _kind(cls), x, torch.ones(x.shape))
    assert not all(torch.isfinite(t).all() for t in (*states, gx))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_diverging_neuron_fires_with_finite_state_and_gradients(case, backend):
    """Past the bound a neuron fires on every step (a hard reset brings it back), its state stays within
    ±2^100 and every gradient is finite; the backends agree bit for bit."""
    cls, _, kw, x, spikes = DIVERGING[case]
    s, states, gx = run_with_grad(cls(step_mode="m", backend=backend, **kw), _kind(cls), x, torch.ones(x.shape))
    assert s[:, 0].tolist() == spikes
    for v in states:
        assert torch.isfinite(v).all() and v.abs().max() <= LIMIT
    assert torch.isfinite(gx).all()
    reference = run_with_grad(cls(step_mode="m", backend="torch", **kw), _kind(cls), x, torch.ones(x.shape))
    for a, b in zip((s, *states), (reference[0], *reference[1])):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------------------
# Parameters: checked once, at construction
# ------------------------------------------------------------------------------------------------------------
BAD_PARAMS = [
    (QIF, dict(a0=0.0), ValueError, ("a0",)),
    (QIF, dict(a0=-1.0), ValueError, ("a0",)),
    (QIF, dict(tau=0.5), ValueError, ("tau",)),
    (QIF, dict(v_rest=0.8, v_c=0.8), ValueError, ("v_rest", "v_c")),
    (QIF, dict(v_c=math.nan), ValueError, ("v_c",)),
    (QIF, dict(v_reset=1.0), ValueError, ("v_reset", "v_threshold")),
    (QIF, dict(v_reset=None, v_threshold=0.0), ValueError, ("v_threshold",)),
    (QIF, dict(delta_T=1.0), TypeError, ("delta_T",)),
    (EIF, dict(delta_T=0.0), ValueError, ("delta_T",)),
    (EIF, dict(delta_T=-1.0), ValueError, ("delta_T",)),
    (EIF, dict(delta_T=math.inf), ValueError, ("delta_T",)),
    (EIF, dict(theta_rh=math.nan), ValueError, ("theta_rh",)),
    (EIF, dict(tau=0.9), ValueError, ("tau",)),
    (EIF, dict(v_reset=2.0), ValueError, ("v_reset",)),
    (Izhikevich, dict(tau_w=0.5), ValueError, ("tau_w",)),
    (Izhikevich, dict(a0=0.0), ValueError, ("a0",)),
    (Izhikevich, dict(v_rest=1.0, v_c=0.5), ValueError, ("v_rest", "v_c")),
    (Izhikevich, dict(b=math.inf), ValueError, ("b must be finite",)),
    (Izhikevich, dict(w_rest=math.nan), ValueError, ("w_rest",)),
]


def _case_id(cls, kw) -> str:
    return f"{cls.__name__}-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("cls, kw, exc, names", BAD_PARAMS, ids=[_case_id(c, kw) for c, kw, _, _ in BAD_PARAMS])
def test_bad_parameter_is_a_clear_error(cls, kw, exc, names):
    expect_clear_error(lambda: cls(**kw), exc, cls.__name__, *names)


# ------------------------------------------------------------------------------------------------------------
# backend='cpp' runs compiled code; export is refused with the reason
# ------------------------------------------------------------------------------------------------------------
def _aten_ops(neuron, x) -> set:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        neuron(x).sum().backward()
    return {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_cpp_backend_runs_compiled_code(kind):
    """The torch reference calls aten::where (the bound) and aten::mul on every step; backend='cpp' calls neither:
    its forward and backward are the compiled loops."""
    x = torch.rand(6, 2, 8, requires_grad=True)
    cls = FAMILIES[kind][0]
    assert {"aten::where", "aten::mul"} <= _aten_ops(cls(step_mode="m", backend="torch"), x)
    ops = _aten_ops(cls(step_mode="m", backend="cpp"), x)
    assert not ops & {"aten::where", "aten::mul", "aten::exp", "aten::clamp"}, sorted(ops)


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_export_is_refused_naming_the_layer_and_the_reason(kind):
    from snn.export.loihi import LoweringError, lower
    from snn.export.nir import to_nir

    cls = FAMILIES[kind][0]
    net = nn.Sequential(nn.Linear(4, 3), cls(step_mode="m"))
    expect_clear_error(lambda: to_nir(net, (4,)), LoweringError, "layer 1", cls.__name__, "NIR has no")
    expect_clear_error(lambda: lower(net, (4,)), LoweringError, "layer 1", cls.__name__, "CUBA LIF")


def test_registered_as_neuron_specs():
    assert {"qif", "eif", "izhikevich"} <= set(snn.neurons.names())
    for kind, (cls, _, _) in FAMILIES.items():
        assert snn.neurons.spec_of(cls).name == kind
