"""The threshold comparison, on every backend and in both step modes.

IF, LIF, PLIF and ALIF fire on ``H >= V_th`` by default (SpikingJelly's convention) and on ``H > V_th``
with ``strict_threshold=True`` (NIR, Norse, snnTorch); CUBALIF always fires on ``V > V_th`` (Lava).
The inputs land exactly on the threshold (sums of powers of two, exact in every float dtype), so a
backend that compares the other way gives a different spike.
"""
from __future__ import annotations

import sys

import pytest
import torch

import snn
from snn import surrogate as sg
from snn.neuron import ALIF, CUBALIF, IF, LIF, PLIF
from triton_interp import run_triton_main

CPU_BACKENDS = [b for b in ("torch", "cpp") if b in snn.ops.available_backends()]
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# family -> (constructor, input [T, 1] whose H equals V_th = 1 at the marked steps, the steps with a tie)
TIES = {
    "IF": (lambda **k: IF(**k), [0.5, 0.5, 0.25], [1]),            # H: 0.5, 1.0 (tie)
    "LIF": (lambda **k: LIF(tau=2.0, **k), [2.0, 0.0], [0]),          # H = V + (X - V)/2 = 1.0
    "PLIF": (lambda **k: PLIF(init_tau=2.0, **k), [2.0, 0.0], [0]),   # sigmoid(w0) = 1/2 exactly
    "ALIF": (lambda **k: ALIF(tau=2.0, rho=0.5, beta=0.5, **k), [2.0, 3.0], [0]),
}


def run(neuron, x, mode):
    with torch.no_grad():
        return neuron(x) if mode == "m" else torch.stack([neuron(xt) for xt in x])


def check_tie(name, backend, mode, dtype, strict):
    make, xs, ties = TIES[name]
    x = torch.tensor(xs, dtype=dtype).view(-1, 1)
    n = make(step_mode=mode, backend=backend, strict_threshold=strict)
    s = run(n, x, mode).view(-1)
    assert n.last_backend == backend
    for t in ties:
        assert s[t].item() == (0.0 if strict else 1.0), \
            f"{name} {backend}/{mode} {dtype} strict={strict}: spike {s[t].item()} at the tie step {t}"


def check_cubalif_tie(backend, mode, dtype):
    x = torch.tensor([1.0, 1.25], dtype=dtype).view(-1, 1)     # du = dv = 1: V = X; 1.0 is the tie
    n = CUBALIF(du=1.0, dv=1.0, v_threshold=1.0, step_mode=mode, backend=backend)
    assert run(n, x, mode).view(-1).tolist() == [0.0, 1.0], f"CUBALIF {backend}/{mode} {dtype}"


def check_grid_against_reference(family, backend, strict, v_reset, seed=0):
    """Inputs on a grid of 1/4 with decay 1/2 and V_th = 1 hit the threshold exactly in many neurons: the
    backend's spikes equal the torch reference's, its gradients (through S recomputed at the ties, the PLIF
    decay's included) too."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randint(-4, 9, (6, 200), generator=g).double() / 4).requires_grad_()
    v0 = torch.zeros(200, dtype=torch.float64, requires_grad=True)
    d = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    kw = dict(v_threshold=1.0, v_reset=v_reset, decay_input=True, detach_reset=False, surrogate=sg.Triangle(0.5),
              strict_threshold=strict, record_v=True)
    outs = []
    for b in ("torch", backend):
        if family == "lif":
            s, v, vs = snn.ops.lif_multistep(x, v0, d, backend=b, **kw)
        else:
            s, v, _, vs = snn.ops.alif_multistep(x, v0, torch.zeros(200, dtype=torch.float64), d, backend=b,
                                                 rho=0.5, beta=0.25, **kw)
        w = torch.randn(s.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
        outs.append((s, vs) + torch.autograd.grad((s * w).sum() + vs.sum(), (x, v0, d)))
    (s_r, vs_r, *g_r), (s_b, vs_b, *g_b) = outs
    assert torch.equal(s_b, s_r), f"{family} {backend} strict={strict}: spikes differ from the reference"
    torch.testing.assert_close(vs_b, vs_r, atol=1e-12, rtol=1e-12)
    for name, a, r in zip(("x", "v_init", "decay"), g_b, g_r):
        torch.testing.assert_close(a, r, atol=1e-9, rtol=1e-9, msg=lambda m: f"gradient of {name}: {m}")
    return s_r


# -- torch and cpp, in process -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", list(TIES))
def test_tie_fires_unless_strict(name, backend, mode, dtype):
    check_tie(name, backend, mode, dtype, strict=False)
    check_tie(name, backend, mode, dtype, strict=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cubalif_tie_never_fires(backend, mode, dtype):
    check_cubalif_tie(backend, mode, dtype)


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("family", ["lif", "alif"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_grid_ties_match_reference_with_gradients(family, backend, v_reset):
    loose = check_grid_against_reference(family, backend, False, v_reset)
    strict = check_grid_against_reference(family, backend, True, v_reset)
    assert (loose != strict).any(), "the grid produced no tie: the test would not see a wrong comparison"


def test_flag_is_stored_and_shown():
    for make in (IF, LIF, PLIF, ALIF):
        assert make().strict_threshold is False
        n = make(strict_threshold=True)
        assert n.strict_threshold is True and "strict_threshold=True" in repr(n)
    c = CUBALIF()
    assert c.strict_threshold is True and "strict_threshold=True" in repr(c)
    assert CUBALIF(strict_threshold=True).strict_threshold is True


def test_cubalif_ops_refuse_a_non_strict_comparison():
    with pytest.raises(ValueError, match="strict_threshold"):
        snn.ops.cubalif_multistep(torch.ones(2, 3), torch.zeros(3), torch.zeros(3), du=0.5, dv=0.5,
                                  v_threshold=1.0, bias=0.0, detach_reset=False, surrogate=sg.Sigmoid(),
                                  strict_threshold=False)


# -- triton, in the interpreter (a subprocess: TRITON_INTERPRET must be set before triton loads) -------
def _triton_main() -> None:
    for mode in ("s", "m"):
        for dtype in (torch.float32, torch.bfloat16):
            for name in TIES:
                for strict in (False, True):
                    check_tie(name, "triton", mode, dtype, strict)
            check_cubalif_tie("triton", mode, dtype)
    for family in ("lif", "alif"):
        for strict in (False, True):
            check_grid_against_reference(family, "triton", strict, 0.0)
    print("triton ok")


def test_triton_honours_the_comparison():
    run_triton_main(__file__)


if __name__ == "__main__" and "--triton" in sys.argv:
    _triton_main()
