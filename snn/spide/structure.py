"""The connections of a feedback spiking network, checked to be affine maps, and their transposes.

SPIDE's backward phase sends errors back through every connection ``y = W·x + b`` as ``Wᵀ·δ``; this needs
each connection to be affine in its input. Accepted: ``nn.Linear``, convolutions and transposed
convolutions (1-3d), average pooling, ``Flatten``/``Unflatten``/``Identity``, and ``nn.Sequential`` of these;
:func:`register_affine` adds a class of your own. snn's time-folding layers are accepted in step mode 's'.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

__all__ = ["AFFINE_TYPES", "register_affine", "check_affine", "transpose_of"]

AFFINE_TYPES: list[type] = [nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                            nn.ConvTranspose3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.Flatten, nn.Unflatten,
                            nn.Identity]


def register_affine(cls: type) -> type:
    """Accept modules of ``cls`` as SPIDE connections: its forward must be affine in its input."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_affine: expected an nn.Module class, got {cls!r}")
    if cls not in AFFINE_TYPES:
        AFFINE_TYPES.append(cls)
    return cls


def check_affine(module, name: str, who: str = "FeedbackSNN") -> nn.Module:
    """``module`` if it is an affine connection (module docstring), else a TypeError naming ``name`` and the
    offending submodule."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"{who}: connection {name!r} must be an nn.Module (an affine map such as nn.Linear), "
                        f"got {type(module).__name__}")
    if isinstance(module, nn.Sequential):
        for i, sub in enumerate(module):
            check_affine(sub, f"{name}.{i}", who)
        return module
    if not isinstance(module, tuple(AFFINE_TYPES)):
        accepted = ", ".join(t.__name__ for t in AFFINE_TYPES)
        raise TypeError(f"{who}: connection {name!r} is a {type(module).__name__}, which is not an affine map; "
                        f"SPIDE sends errors back through the transpose of every connection, so connections must "
                        f"be affine: {accepted}, nn.Sequential of them (snn.spide.register_affine adds a class)")
    if getattr(module, "step_mode", "s") != "s":
        raise ValueError(f"{who}: connection {name!r} ({type(module).__name__}) has step_mode="
                         f"{module.step_mode!r}; SPIDE calls connections one time step at a time: use step_mode='s'")
    return module


def transpose_of(module: nn.Module, like: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``δ ↦ Wᵀ·δ`` of the affine ``module`` at inputs shaped like ``like`` (the vector-Jacobian product,
    which is the same at every input; computed without recording a graph)."""
    if isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward:
        weight = module.weight.detach()
        return lambda d: d @ weight
    with torch.no_grad():
        _, vjp = torch.func.vjp(module, torch.zeros_like(like))
    return lambda d: vjp(d)[0]
