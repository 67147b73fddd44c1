"""Triton kernels for the neuron dynamics (installed as ``snn.kernels``)."""
