"""IF, LIF and PLIF against SpikingJelly 2.0 itself: spikes exactly, gradients within 1e-5."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn import surrogate as sg
from snn.neuron import IF, LIF, PLIF

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
from spikingjelly.activation_based import functional as sj_functional  # noqa: E402

params = st.fixed_dictionaries({
    "kind": st.sampled_from(["if", "lif", "plif"]),
    "tau": st.floats(1.1, 10.0),
    "v_threshold": st.floats(0.2, 2.0),
    "hard": st.booleans(),
    "v_reset_offset": st.floats(0.05, 1.0),
    "decay_input": st.booleans(),
    "detach_reset": st.booleans(),
    "T": st.integers(1, 12),
    "shape": st.sampled_from([(3,), (2, 5), (4, 2, 3)]),
    "surrogate": st.sampled_from(["sigmoid", "atan", "erf"]),
    "seed": st.integers(0, 2**16),
})

SURROGATES = {"sigmoid": (sg.Sigmoid, sj_surrogate.Sigmoid), "atan": (sg.ATan, sj_surrogate.ATan),
              "erf": (sg.Erf, sj_surrogate.Erf)}


def build(p):
    v_reset = p["v_threshold"] - p["v_reset_offset"] - 0.5 if p["hard"] else None
    ours_sg, theirs_sg = SURROGATES[p["surrogate"]]
    common = dict(v_threshold=p["v_threshold"], v_reset=v_reset, detach_reset=p["detach_reset"])
    if p["kind"] == "if":
        ours = IF(surrogate=ours_sg(), step_mode="m", **common)
        theirs = sj_neuron.IFNode(surrogate_function=theirs_sg(), step_mode="m", **common)
    elif p["kind"] == "lif":
        ours = LIF(tau=p["tau"], decay_input=p["decay_input"], surrogate=ours_sg(), step_mode="m", **common)
        theirs = sj_neuron.LIFNode(tau=p["tau"], decay_input=p["decay_input"], surrogate_function=theirs_sg(),
                                   step_mode="m", **common)
    else:
        ours = PLIF(init_tau=p["tau"], decay_input=p["decay_input"], surrogate=ours_sg(), step_mode="m", **common)
        theirs = sj_neuron.ParametricLIFNode(init_tau=p["tau"], decay_input=p["decay_input"],
                                             surrogate_function=theirs_sg(), step_mode="m", **common)
    return ours, theirs


@settings(max_examples=60, deadline=None)
@given(params)
def test_matches_spikingjelly(p):
    ours, theirs = build(p)
    g = torch.Generator().manual_seed(p["seed"])
    x = (torch.rand((p["T"], *p["shape"]), generator=g) * 3 * p["v_threshold"]).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    s_ours = ours(x)
    s_theirs = theirs(x2)
    assert torch.equal(s_ours, s_theirs)
    # A loss that weights spikes and the final membrane potential, so both gradient paths are checked.
    w = torch.rand(s_ours.shape, generator=g)
    (s_ours * w).sum().add(ours.v.sum()).backward()
    (s_theirs * w).sum().add(theirs.v.sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    if p["kind"] == "plif":
        torch.testing.assert_close(ours.w.grad, theirs.w.grad, rtol=1e-5, atol=1e-5)
    sj_functional.reset_net(theirs)


def test_single_step_sequence_matches_spikingjelly_single_step():
    ours = LIF(tau=3.0, step_mode="s")
    theirs = sj_neuron.LIFNode(tau=3.0, step_mode="s")
    x = torch.rand(7, 4, 5) * 2
    for t in range(7):
        assert torch.equal(ours(x[t]), theirs(x[t]))
    torch.testing.assert_close(ours.v, theirs.v)
