"""Surrogate spike functions.

Forward pass of every surrogate is the Heaviside step ``Θ(x) = 1 if x >= 0 else 0``
(``strict=True``: ``1 if x > 0``, the comparison of neurons built with ``strict_threshold=True``
and of CUBALIF).
The backward pass is the derivative ``σ'(x)`` of a smooth function ``σ`` that
approaches the step as the sharpness ``alpha`` grows.

Each surrogate is declared once, here: its torch ``primitive`` and ``derivative``, an integer ``kind``
(:data:`KINDS`) and the constants ``(a, c)`` of its kernel form (:meth:`Surrogate.kernel_constants`, formed
in double precision). The compiled kernels evaluate ``σ'`` from ``(kind, a, c)`` alone: one expression per
kind in C++/CUDA (``surrogate_grad`` in ``csrc/neuron_math.h``) and in Triton (:mod:`snn.kernels.surrogate`)::

    kind  surrogate    a        c        σ'(x) in the kernels
    0     Sigmoid      α        -        a·e/(1 + e)², e = exp(-a|x|)  (= a·sig(ax)·(1 - sig(ax)))
    1     ATan         π/2·α    α/2      c / (1 + (ax)²)
    2     FastSigmoid  α        α/2      c / (1 + a|x|)²
    3     Triangle     α        -        a·max(0, 1 - a|x|)
    4     Erf          α        α/√π     c·exp(-(ax)²)
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "Surrogate", "Sigmoid", "ATan", "FastSigmoid", "SuperSpike", "Triangle", "Erf",
    "heaviside", "get", "KINDS",
]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Θ(x) = 1 where x >= 0, else 0, in x's dtype."""
    return (x >= 0).to(x.dtype)


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward, ``surrogate.derivative`` backward."""

    @staticmethod
    def forward(ctx, x, surrogate, strict):
        if x.requires_grad:
            ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype) if strict else heaviside(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.derivative(x), None, None


class Surrogate:
    """Base class: subclasses define ``primitive`` (smooth σ) and ``derivative`` (σ')."""

    kind: int = -1
    default_alpha: float = 1.0

    def __init__(self, alpha: float | None = None, spiking: bool = True):
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be a finite number > 0, got {alpha}")
        self.alpha = alpha
        self.spiking = bool(spiking)

    def __call__(self, x: torch.Tensor, strict: bool = False) -> torch.Tensor:
        """Spike: Θ(x) forward (``x > 0`` when ``strict``, as Loihi fires), σ'(x) backward.

        With ``spiking=False`` the forward is the smooth σ(x) itself (an ANN-like relaxation, also what
        lets ``gradcheck`` verify a whole neuron's backward); only the torch backend runs that mode."""
        if not self.spiking:
            return self.primitive(x)
        return _SpikeFn.apply(x, self, strict)

    def kernel_constants(self) -> tuple[float, float]:
        """``(a, c)`` of the kernels' form of σ' (see the module docstring)."""
        return self.alpha, 0.0

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        smooth = "" if self.spiking else ", spiking=False"
        return f"{type(self).__name__}(alpha={self.alpha}{smooth})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and (self.alpha, self.spiking) == (other.alpha, other.spiking)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha, self.spiking))


class Sigmoid(Surrogate):
    """σ(x) = sigmoid(αx);  σ'(x) = α·sigmoid(αx)·(1 - sigmoid(αx)). SpikingJelly's default (α=4)."""

    kind = 0
    default_alpha = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


class ATan(Surrogate):
    """σ(x) = atan(π/2·αx)/π + 1/2;  σ'(x) = α / (2·(1 + (π/2·αx)²))."""

    kind = 1
    default_alpha = 2.0

    def kernel_constants(self):
        return math.pi / 2 * self.alpha, self.alpha / 2

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x):
        ax = math.pi / 2 * self.alpha * x
        return self.alpha / 2 / (1 + ax * ax)


class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli): σ(x) = αx / (2(1 + α|x|)) + 1/2;  σ'(x) = α / (2(1 + α|x|)²).

    Normalised so that σ goes from 0 to 1 like the others; snnTorch's ``fast_sigmoid(slope)``
    derivative 1/(1 + slope·|x|)² equals this one with ``alpha=slope`` times ``2/slope``.
    """

    kind = 2
    default_alpha = 25.0

    def kernel_constants(self):
        return self.alpha, 0.5 * self.alpha

    def primitive(self, x):
        return self.alpha * x / (2 * (1 + self.alpha * x.abs())) + 0.5

    def derivative(self, x):
        d = 1 + self.alpha * x.abs()
        return 0.5 * self.alpha / (d * d)


SuperSpike = FastSigmoid


class Triangle(Surrogate):
    """Piecewise linear: σ'(x) = α·max(0, 1 - α|x|);  σ(x) = 1/2 + u - u|u|/2 with u = clamp(αx, -1, 1)."""

    kind = 3
    default_alpha = 1.0

    def primitive(self, x):
        ax = (self.alpha * x).clamp(-1, 1)
        return 0.5 + ax - ax * ax.abs() / 2

    def derivative(self, x):
        return self.alpha * (1 - self.alpha * x.abs()).clamp_min(0)


class Erf(Surrogate):
    """σ(x) = erfc(-αx)/2;  σ'(x) = α/√π · exp(-α²x²)."""

    kind = 4
    default_alpha = 2.0

    def kernel_constants(self):
        return self.alpha, self.alpha / math.sqrt(math.pi)

    def primitive(self, x):
        return torch.special.erfc(-self.alpha * x) / 2

    def derivative(self, x):
        return self.alpha / math.sqrt(math.pi) * torch.exp(-(self.alpha * x) ** 2)


KINDS = {cls.kind: cls for cls in (Sigmoid, ATan, FastSigmoid, Triangle, Erf)}
_BY_NAME = {
    "sigmoid": Sigmoid, "atan": ATan, "fastsigmoid": FastSigmoid, "fast_sigmoid": FastSigmoid,
    "superspike": FastSigmoid, "triangle": Triangle, "erf": Erf,
}


def get(spec: "Surrogate | str | None") -> Surrogate:
    """Turn a name (``'atan'``), an instance, or ``None`` (→ Sigmoid) into a surrogate instance."""
    if spec is None:
        return Sigmoid()
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, type) and issubclass(spec, Surrogate):
        return spec()
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise ValueError(f"unknown surrogate {spec!r}; accepted: {sorted(set(_BY_NAME))} or a snn.surrogate.Surrogate")
