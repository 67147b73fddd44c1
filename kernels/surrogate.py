"""Surrogate derivatives σ'(x) as Triton device functions, one per ``kind`` of :mod:`snn.surrogate`.

``surrogate_grad(x, a, c, KIND)`` evaluates what ``snn.surrogate.KINDS[KIND](alpha).derivative(x)``
computes in torch. ``KIND`` is a ``tl.constexpr``, so each kernel is specialised to one surrogate and
the other branches are compiled away. The constants ``a`` and ``c`` come from
:func:`surrogate_constants` (computed in double precision on the host, exactly as the torch
reference forms them, then cast to the compute dtype in the kernel: Triton would round a Python
float literal to float32 even in a float64 kernel)::

    kind  surrogate    a      c         σ'(x)
    0     Sigmoid      α      -         α·sig(αx)·(1 - sig(αx))
    1     ATan         π/2·α  α/2       c / (1 + (a·x)²)
    2     FastSigmoid  α      α/2       c / (1 + α|x|)²
    3     Triangle     α      -         α·max(0, 1 - α|x|)
    4     Erf          α      α/√π      c · exp(-(αx)²)
"""
import math

import triton
import triton.language as tl


def surrogate_constants(surrogate):
    """``(kind, a, c)`` of a :class:`snn.surrogate.Surrogate` instance, as the kernels take them."""
    kind, alpha = int(surrogate.kind), float(surrogate.alpha)
    if kind == 1:
        return kind, math.pi / 2 * alpha, alpha / 2
    if kind == 2:
        return kind, alpha, 0.5 * alpha
    if kind == 4:
        return kind, alpha, alpha / math.sqrt(math.pi)
    if kind in (0, 3):
        return kind, alpha, 0.0
    raise ValueError(f"surrogate {surrogate!r} has kind {kind}; the Triton kernels know kinds 0..4")


@triton.jit
def surrogate_grad(x, a, c, KIND: tl.constexpr):
    """σ'(x) of surrogate ``KIND`` with the constants of :func:`surrogate_constants`."""
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
