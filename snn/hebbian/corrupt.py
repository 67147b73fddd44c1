r"""Synthetic domain shifts for test-time adaptation: images ``[N, C, H, W]`` in ``[0, 1]``.

- ``noise``:    ``clip(x + σ ε, 0, 1)``, ``ε ~ N(0, 1)`` per pixel, ``σ = severity``
- ``contrast``: ``m + (x - m)·c`` with ``m`` the image's mean and ``c = severity`` (``c < 1`` lowers contrast)
- ``rotation``: every image rotated by ``severity`` degrees about its centre (bilinear, zeros outside)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import check_range
from .rule import check_input

__all__ = ["CORRUPTIONS", "DEFAULT_SEVERITY", "corrupt"]

CORRUPTIONS = ("noise", "contrast", "rotation")
DEFAULT_SEVERITY = {"noise": 0.3, "contrast": 0.3, "rotation": 30.0}


def corrupt(x: torch.Tensor, kind: str, severity: float | None = None, seed: int = 0) -> torch.Tensor:
    """``x`` under the corruption ``kind`` (see the module docstring) at ``severity`` (default per kind)."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"corrupt: kind must be one of {CORRUPTIONS}, got {kind!r}")
    check_input(x, "x", "corrupt", 4)
    s = DEFAULT_SEVERITY[kind] if severity is None else severity
    if kind == "noise":
        s = check_range(s, "severity", "corrupt (noise σ)", low=0)
        g = torch.Generator().manual_seed(seed)
        return (x + s * torch.randn(x.shape, generator=g).to(x)).clamp(0, 1)
    if kind == "contrast":
        s = check_range(s, "severity", "corrupt (contrast factor)", low=0)
        m = x.mean((1, 2, 3), keepdim=True)
        return m + (x - m) * s
    s = check_range(s, "severity", "corrupt (rotation in degrees)")
    a = math.radians(s)
    theta = x.new_tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
