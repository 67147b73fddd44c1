"""Functional core: the pure-torch reference dynamics and network-wide helpers."""
from __future__ import annotations

import torch.nn as nn

from ..base import MemoryModule, StepMode
from .alif import alif_multistep
from .cubalif import cubalif_multistep
from .lif import lif_charge, lif_fire_reset, lif_multistep

__all__ = ["lif_multistep", "lif_charge", "lif_fire_reset", "alif_multistep", "cubalif_multistep",
           "reset", "set_step_mode"]


def reset(net: nn.Module) -> None:
    """Clear the state of every stateful (:class:`snn.base.MemoryModule`) module in ``net``."""
    for m in net.modules():
        if isinstance(m, MemoryModule):
            m.reset()


def set_step_mode(net: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` ('s' or 'm') on every snn module in ``net``."""
    for m in net.modules():
        if isinstance(m, StepMode):
            m.step_mode = step_mode
