"""Triton kernels for the neuron dynamics (installed as ``snn.kernels``).

One algorithm per file, forward and backward side by side, each equal to its torch reference in
:mod:`snn.functional`: :mod:`.lif` (IF/LIF/PLIF), :mod:`.alif`, :mod:`.cubalif`; what they share is
in :mod:`.steps` (charge, reset, ∂L/∂H, what the forward saves) and :mod:`.surrogate` (the surrogate
derivatives). The autograd wrappers are in :mod:`snn.ops.triton_backend`. This package imports no
Triton itself, so ``import snn.kernels`` works without it; the submodules need it.
"""
