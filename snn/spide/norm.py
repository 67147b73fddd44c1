"""A cap on the Frobenius norm of the feedback weight, which keeps the equilibrium stable.

``W = V·min(1, r / ‖V‖_F)`` (a parametrization of the module's ``weight``; ``V`` is what the optimizer
updates). For a single-layer network the equilibrium Jacobian ``J = m ⊙ W / c`` then has spectral radius at
most ``r / c``, so with ``r < c`` the equilibrium is unique and both the fixed-point IDE solve and the
spiking backward converge.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ..checks import check_range

__all__ = ["FrobeniusCap", "cap_weight_norm"]


class FrobeniusCap(nn.Module):
    """``V ↦ V·min(1, max_norm / ‖V‖_F)``."""

    def __init__(self, max_norm: float):
        super().__init__()
        self.max_norm = check_range(max_norm, "feedback_norm", "FrobeniusCap", 0.0, low_open=True)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(v)
        return v * torch.clamp(self.max_norm / norm.clamp_min(1e-30), max=1.0)

    def extra_repr(self) -> str:
        return f"max_norm={self.max_norm}"


def cap_weight_norm(module: nn.Module, max_norm: float | None) -> nn.Module:
    """Cap ``module.weight``'s Frobenius norm at ``max_norm`` (None: leave it free). Returns ``module``."""
    if max_norm is not None:
        parametrize.register_parametrization(module, "weight", FrobeniusCap(max_norm))
    return module
