"""DSR neurons: forward spikes, gradients = finite differences of the representation mapping, helpers."""
import pytest
import torch

from snn.train import dsr


def test_if_forward_hand_computed():
    x = torch.full((4, 1), 0.6)
    out = dsr.DSRIF(v_threshold=1.0, alpha=0.5)(x)
    assert out.flatten().tolist() == [1.0, 0.0, 1.0, 0.0]  # U: .6→-.4, .2, .8→-.2, .4


def test_lif_forward_hand_computed():
    x = torch.tensor([[0.8], [0.8], [0.0]])
    out = dsr.DSRLIF(tau=2.0, v_threshold=2.0, alpha=0.5)(x)  # λ = 0.5
    # U: .8 (<1) → 0; .4+.8 = 1.2 >= 1 → spike of size 2, U = -.8; -.4 → 0
    assert out.flatten().tolist() == [0.0, 2.0, 0.0]


def test_representation_helpers():
    z = torch.rand(5, 3, 2)
    assert torch.allclose(dsr.weighted_rate(z, 1.0), dsr.rate(z))
    w = dsr.representation_weights(4, 0.5, torch.float64)
    assert torch.allclose(w, torch.tensor([1, 2, 4, 8], dtype=torch.float64) / 15)
    with pytest.raises(ValueError):
        dsr.representation_weights(4, 0.0)


@pytest.mark.parametrize("neuron", [dsr.DSRIF(v_threshold=0.8), dsr.DSRLIF(tau=2.0, v_threshold=0.8)],
                         ids=["if", "lif"])
def test_gradients_match_finite_differences_of_the_mapping(neuron):
    torch.manual_seed(0)
    neuron = neuron.double()
    T, shape = 6, (3, 4)
    x = (torch.rand(T, *shape, dtype=torch.float64) * 1.6 - 0.3).requires_grad_()
    g = torch.randn(T, *shape, dtype=torch.float64)
    (g * neuron(x)).sum().backward()

    def mapped_loss(x_, v_th):  # the representation mapping the backward pass differentiates
        r_out = dsr.dsr_mapping(dsr.weighted_rate(x_, neuron.lam), v_th)
        return float((g * r_out.unsqueeze(0)).sum())

    r_in = dsr.weighted_rate(x.detach(), neuron.lam)
    v_th = float(neuron.v_threshold.detach())
    assert ((r_in - v_th).abs() > 1e-3).all() and (r_in.abs() > 1e-3).all()  # away from the kinks
    eps = 1e-6
    fd = torch.zeros_like(x)
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in x.shape]):
        idx = tuple(idx.tolist())
        xp, xm = x.detach().clone(), x.detach().clone()
        xp[idx] += eps
        xm[idx] -= eps
        fd[idx] = (mapped_loss(xp, v_th) - mapped_loss(xm, v_th)) / (2 * eps)
    assert torch.allclose(x.grad, fd, atol=1e-7)
    fd_v = (mapped_loss(x.detach(), v_th + eps) - mapped_loss(x.detach(), v_th - eps)) / (2 * eps)
    assert neuron.v_threshold.grad.item() == pytest.approx(fd_v, abs=1e-7)


def test_rate_approximates_the_clamp():
    # IF: Σ out = Σ x - U[T], and with alpha = 1/2, |U[T]| <= V_th/2 inside the range: error <= V_th/(2T)
    T, v_th = 16, 1.0
    x = torch.linspace(0.0, 1.0, 101).expand(T, 101)
    r_out = dsr.rate(dsr.DSRIF(v_threshold=v_th)(x))
    assert (r_out - dsr.dsr_mapping(x[0], v_th)).abs().max() <= v_th / (2 * T) + 1e-6


def test_threshold_lower_bound_and_modes():
    n = dsr.DSRIF(v_threshold=1.0, v_threshold_min=0.1)
    with torch.no_grad():
        n.v_threshold.fill_(0.01)
    x = torch.full((4, 2), 0.2, requires_grad=True)
    out = n(x)
    assert bool((torch.isclose(out, torch.tensor(0.1)) | (out == 0)).all()) and out.max() > 0
    out.sum().backward()
    assert n.v_threshold.grad.item() == 0.0
    with pytest.raises(ValueError, match="step_mode"):
        n.step_mode = "s"
    with pytest.raises(ValueError, match="tau"):
        dsr.DSRLIF(tau=1.0)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        n(torch.zeros(3))


def test_dsr_neurons_are_snn_neurons_with_the_method_reexporting_them():
    import snn.neuron
    import snn.neurons

    assert snn.neuron.DSRIF is dsr.DSRIF and snn.neuron.DSRLIF is dsr.DSRLIF
    assert issubclass(dsr.DSRIF, snn.neuron.BaseNeuron)
    assert "dsr" not in snn.neurons.names() and not snn.neurons.is_bound(dsr.DSRLIF)  # chosen by method, not name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_keep_the_state_in_float32(dtype):
    """16-bit inputs: the same spikes as the float32 run on the same values (a 16-bit state drifts off them)."""
    x = (torch.rand(16, 4, 257, generator=torch.Generator().manual_seed(3)) * 0.9).to(dtype)
    n = dsr.DSRLIF(tau=3.0, v_threshold=0.7, backend="torch")
    out = n(x)
    assert out.dtype == dtype
    assert torch.equal(out.float(), n(x.float()).to(dtype).float())
    xg = x.clone().requires_grad_()
    n(xg).float().sum().backward()
    assert xg.grad.dtype == dtype and n.v_threshold.grad.dtype == torch.float32


def test_compiled_backend_equals_the_torch_step():
    import snn.ops

    if "cpp" not in snn.ops.available_backends():
        pytest.skip("snn._C is not built")
    x = torch.rand(9, 3, 70, generator=torch.Generator().manual_seed(4)) * 1.2 - 0.1
    outs, grads = [], []
    for backend in ("torch", "cpp"):
        n = dsr.DSRLIF(tau=2.5, v_threshold=0.8, backend=backend)
        xg = x.clone().requires_grad_()
        out = n(xg)
        (out * torch.linspace(-1, 1, 70)).sum().backward()
        assert n.last_backend == backend
        outs.append(out)
        grads.append((xg.grad, n.v_threshold.grad))
    assert torch.equal(outs[0], outs[1]) and outs[0].sum() > 0
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_bad_parameters_are_named():
    from badinput import expect_clear_error

    expect_clear_error(lambda: dsr.DSRIF(v_threshold=0.0), ValueError, "DSRIF", "v_threshold")
    expect_clear_error(lambda: dsr.DSRLIF(alpha=1.5), ValueError, "DSRLIF", "alpha", "(0.0, 1.0]")
    expect_clear_error(lambda: dsr.DSRIF(v_threshold_min=-1.0), ValueError, "DSRIF", "v_threshold_min")
    expect_clear_error(lambda: dsr.DSRIF(backend="gpu"), ValueError, "DSRIF", "backend")
    expect_clear_error(lambda: dsr.dsr_multistep(torch.zeros(0, 3), 1.0), ValueError, "dsr_multistep", "T >= 1")
