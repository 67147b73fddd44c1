"""``MemoryModule``: the base of every module that keeps state across calls."""
from __future__ import annotations

import torch.nn as nn

__all__ = ["StepMode", "MemoryModule", "STEP_MODES"]

STEP_MODES = ("s", "m")


class StepMode:
    """Mixin: a validated ``step_mode`` attribute. ``'s'`` takes one time step ``[B, ...]``;
    ``'m'`` takes a sequence ``[T, B, ...]``."""

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if mode not in STEP_MODES:
            raise ValueError(f"step_mode must be 's' (one step, [B, ...]) or 'm' (sequence, [T, B, ...]), got {mode!r}")
        self._step_mode = mode


class MemoryModule(StepMode, nn.Module):
    """A module with state (membrane potentials, masks) that persists between calls until :meth:`reset`."""

    def __init__(self, step_mode: str = "s"):
        super().__init__()
        self.step_mode = step_mode

    def reset(self) -> None:  # pragma: no cover - overridden
        """Forget all state."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"
