"""``SynapseMatrix``: ``u @ W`` for a fixed weight matrix ``W [pre, post]``, dense or sparse (CSR), with the
read noise of a resistive-memory array when one realises the weights.

The sparse path computes ``(Wᵀ_csr @ uᵀ)ᵀ``; it is chosen by ``mode='auto'`` when the matrix has at least
``10⁵`` entries and a density <= ``SPARSE_DENSITY`` (measured on 2 CPU cores, torch 2.x: CSR beats dense from
~5 % density at 1000 x 1000 and up, dense wins above).
"""
from __future__ import annotations

import warnings

import torch

__all__ = ["SynapseMatrix", "SPARSE_DENSITY"]

SPARSE_DENSITY = 0.05


def _csr(w: torch.Tensor) -> torch.Tensor:
    """``w`` as a torch CSR tensor, without torch's 'CSR support is in beta' warning on every reservoir."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return w.contiguous().to_sparse_csr()


class SynapseMatrix:
    """Weights ``w [pre, post]``; optional per-weight read variance ``var`` and the device that samples it."""

    def __init__(self, w: torch.Tensor, var: torch.Tensor | None = None, device_model=None, mode: str = "auto"):
        if mode not in ("auto", "dense", "sparse"):
            raise ValueError(f"SynapseMatrix: mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        if var is not None and device_model is None:
            raise ValueError("SynapseMatrix: a read variance needs the device model that samples it")
        density = float((w != 0).float().mean()) if w.numel() else 0.0
        self.sparse = mode == "sparse" or (mode == "auto" and w.numel() >= 100_000 and density <= SPARSE_DENSITY)
        self.mode = "sparse" if self.sparse else "dense"
        self.w, self.var, self.device_model = w, var, device_model
        self._wt = _csr(w.t()) if self.sparse else None
        self._vt = _csr(var.t()) if self.sparse and var is not None else None

    def _mm(self, u: torch.Tensor, w: torch.Tensor, wt) -> torch.Tensor:
        return (wt @ u.t()).t() if wt is not None else u @ w

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        mean = self._mm(u, self.w, self._wt)
        if self.var is None:
            return mean
        return self.device_model.sample_read(mean, self._mm(u * u, self.var, self._vt))
