"""Surrogate derivatives σ'(x) as one Triton device function, specialised per ``KIND`` (a ``tl.constexpr``,
so the other branches are compiled away).

``surrogate_grad(x, a, c, KIND)`` evaluates what ``snn.surrogate.KINDS[KIND](alpha).derivative(x)``
computes in torch, with the constants ``(a, c)`` of :meth:`snn.surrogate.Surrogate.kernel_constants` (the
one table of kinds and constants; the C++ form is ``surrogate_grad`` in ``csrc/neuron_math.h``)::

    kind  surrogate    σ'(x)
    0     Sigmoid      a·sig(ax)·(1 - sig(ax))
    1     ATan         c / (1 + (ax)²)
    2     FastSigmoid  c / (1 + a|x|)²
    3     Triangle     a·max(0, 1 - a|x|)
    4     Erf          c·exp(-(ax)²)
"""
import triton
import triton.language as tl


@triton.jit
def surrogate_grad(x, a, c, KIND: tl.constexpr):
    """σ'(x) of surrogate ``KIND`` with the constants ``a``, ``c`` (compute dtype)."""
    if KIND == 0:
        s = 1.0 / (1.0 + tl.exp(-(a * x)))
        g = a * s * (1.0 - s)
    elif KIND == 1:
        ax = a * x
        g = c / (1.0 + ax * ax)
    elif KIND == 2:
        d = 1.0 + a * tl.abs(x)
        g = c / (d * d)
    elif KIND == 3:
        g = a * tl.maximum(1.0 - a * tl.abs(x), 0.0)
    else:
        ax = a * x
        g = c * tl.exp(-(ax * ax))
    return g
