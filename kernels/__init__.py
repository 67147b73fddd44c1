"""Triton kernels for the neuron dynamics (installed as ``snn.kernels``).

:mod:`.scan` holds the one generic forward and backward kernel; each neuron family contributes its step as
Triton functions (:mod:`.lif` for IF/LIF/PLIF, :mod:`.alif`, :mod:`.cubalif`; the contract is in
:mod:`snn.neurons.spec`), built on :mod:`.steps` and :mod:`.surrogate`. The autograd wrapper is in
:mod:`snn.ops.triton_backend`. This package imports no Triton itself, so ``import snn.kernels`` works
without it; the submodules need it.
"""
