"""Functional core: the pure-torch reference scan of every neuron spec (:mod:`.scan`) and network-wide helpers.

The state of every neuron is kept in :func:`state_dtype` of its input (float32 for float16/bfloat16
inputs); outputs are cast back to the input dtype.
"""
from __future__ import annotations

import torch.nn as nn

from ..base import MemoryModule, StepMode
from .scan import as_state, multistep, state_dtype

__all__ = ["multistep", "state_dtype", "as_state", "reset", "set_step_mode"]


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
