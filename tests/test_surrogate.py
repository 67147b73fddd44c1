import math

import pytest
import torch

from snn import surrogate as sg

ALL = [sg.Sigmoid, sg.ATan, sg.FastSigmoid, sg.Triangle, sg.Erf]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_derivative_matches_finite_differences_of_primitive(cls, alpha):
    s = cls(alpha)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    # Stay off the kinks of the piecewise surrogates (|x| at 0, the triangle's corners).
    x = x[(((alpha * x).abs() - 1).abs() > 1e-3) & (x.abs() > 1e-3)]
    eps = 1e-6
    fd = (s.primitive(x + eps) - s.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(s.derivative(x), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls", ALL)
def test_primitive_goes_from_zero_to_one(cls):
    s = cls()
    big = torch.tensor([-1e4, 1e4], dtype=torch.float64)
    torch.testing.assert_close(s.primitive(big), torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-3, rtol=0)
    # The derivative integrates to one (a proper smoothing of the step).
    x = torch.linspace(-200, 200, 400001, dtype=torch.float64)
    assert abs(torch.trapezoid(s.derivative(x), x).item() - 1.0) < 2e-3


@pytest.mark.parametrize("cls", ALL)
def test_forward_is_heaviside_and_backward_is_derivative(cls):
    s = cls()
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0], requires_grad=True)
    y = s(x)
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    torch.testing.assert_close(x.grad, s.derivative(x.detach()))


def test_strict_fires_only_above_zero():
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert sg.Sigmoid()(x, strict=True).tolist() == [0.0, 0.0, 1.0]


def test_non_spiking_mode_is_the_smooth_function():
    s = sg.ATan(2.0, spiking=False)
    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(s, (x,))
    torch.testing.assert_close(s(x), s.primitive(x))


def test_sigmoid_matches_spikingjelly_gradient():
    sj = pytest.importorskip("spikingjelly.activation_based.surrogate")
    for ours, theirs in [(sg.Sigmoid(4.0), sj.Sigmoid(4.0)), (sg.ATan(2.0), sj.ATan(2.0)), (sg.Erf(2.0), sj.Erf(2.0))]:
        x1 = torch.randn(100, requires_grad=True)
        x2 = x1.detach().clone().requires_grad_()
        ours(x1).sum().backward()
        theirs(x2).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-7)


def test_get_and_bad_values():
    assert isinstance(sg.get("atan"), sg.ATan)
    assert isinstance(sg.get(None), sg.Sigmoid)
    assert sg.get(sg.Erf(3.0)).alpha == 3.0
    with pytest.raises(ValueError, match="unknown surrogate"):
        sg.get("relu")
    with pytest.raises(ValueError, match="alpha must be"):
        sg.Sigmoid(-1.0)
    with pytest.raises(ValueError, match="alpha must be"):
        sg.ATan(math.nan)
