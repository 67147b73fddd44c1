"""The ``cuda`` backend: fused multi-step CUDA kernels (``csrc/cuda/*.cu``, bound in ``snn._C``).

Same autograd Functions and the same contract as the ``cpp`` backend (:mod:`snn.ops.cpp_backend`):
``snn._C`` dispatches each call on the tensors' device, so only the device check differs.
One thread per neuron runs the whole time loop with its state in registers; step ``t`` is
read and written with coalesced accesses; the PLIF decay gradient is reduced per block in a
fixed tree order and then over blocks in index order (deterministic). Built with
``--fmad=false`` so spikes are bit-identical to the torch reference on the same device.

Available when ``snn._C`` was built with CUDA (a CUDA torch and ``nvcc`` at ``make build``) and a
GPU is visible.
"""
from __future__ import annotations

import torch

from . import cpp_backend as _impl

NAME = "cuda"
FAMILIES = ("lif", "alif", "cubalif")

__all__ = ["NAME", "FAMILIES", "is_available", "supports_device", "lif_multistep", "alif_multistep",
           "cubalif_multistep"]


def is_available() -> bool:
    return _impl._C is not None and bool(getattr(_impl._C, "with_cuda", False)) and torch.cuda.is_available()


def supports_device(device) -> bool:
    return torch.device(device).type == "cuda"


def _on_cuda(x_seq, who: str) -> None:
    if not (isinstance(x_seq, torch.Tensor) and x_seq.is_cuda):
        where = x_seq.device if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"{who}: the cuda backend runs CUDA tensors, got x_seq on {where}")


def lif_multistep(x_seq, v_init, decay, **kw):
    """IF/LIF/PLIF over ``[T, ...]`` on CUDA; see :func:`snn.ops.cpp_backend.lif_multistep`."""
    _on_cuda(x_seq, "lif_multistep(backend='cuda')")
    return _impl.lif_multistep(x_seq, v_init, decay, **kw)


def alif_multistep(x_seq, v_init, b_init, decay, **kw):
    """ALIF over ``[T, ...]`` on CUDA; see :func:`snn.ops.cpp_backend.alif_multistep`."""
    _on_cuda(x_seq, "alif_multistep(backend='cuda')")
    return _impl.alif_multistep(x_seq, v_init, b_init, decay, **kw)


def cubalif_multistep(x_seq, u_init, v_init, **kw):
    """CUBALIF over ``[T, ...]`` on CUDA; see :func:`snn.ops.cpp_backend.cubalif_multistep`."""
    _on_cuda(x_seq, "cubalif_multistep(backend='cuda')")
    return _impl.cubalif_multistep(x_seq, u_init, v_init, **kw)
