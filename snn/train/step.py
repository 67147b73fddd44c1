"""One training step, shared by every method and every loop (:func:`snn.train.fit`, the continual trainer).

A :class:`Step` is what a method calls to turn a loss into an update::

    step.zero_grad()
    loss, logits = method.run(model, x_seq, y, step)
        # inside: with step.autocast(): forward, loss = Σ CE / step.denom
        #         step.backward(loss)       (scaled by the GradScaler under fp16)
        #         step.update()             sync (all-reduce) → unscale → before_update() → clip → optimizer step

``denom`` is the global batch size, so that summing gradients over processes gives the global mean.
A Step without an optimizer only accumulates gradients (``update`` runs ``before_update`` and nothing else):
the continual trainer's replay and Fisher passes use that.

Mixed precision (``amp``): ``'bf16'`` autocasts to bfloat16 (CPU or CUDA; no loss scaling needed), ``'fp16'``
autocasts to float16 with a ``torch.amp.GradScaler`` (CUDA only: CPU float16 matmuls are slow and unscaled
gradients underflow). Neuron states stay float32 whatever the input dtype.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch

__all__ = ["AMP_MODES", "Step", "autocast_dtype", "make_scaler", "train_step", "full_precision"]

AMP_MODES = (None, "bf16", "fp16")


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if it is float16/bfloat16 (where a loss is computed), else unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def autocast_dtype(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device`` (None: full precision); a clear error where it cannot run."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
    if amp is None:
        return None
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device (float16 with loss scaling); on {device.type} use "
                         f"amp='bf16'")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def make_scaler(amp: str | None, device: torch.device):
    """A GradScaler for fp16 on CUDA, else None."""
    if amp == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


class Step:
    """The update machinery of one batch (see the module docstring)."""

    def __init__(self, optimizer=None, *, denom: float, sync: Callable[[], None] | None = None, scaler=None,
                 clip_grad: float | None = None, amp_dtype: torch.dtype | None = None, device_type: str = "cpu",
                 before_update: Callable[[], None] | None = None):
        self.optimizer, self.denom = optimizer, float(denom)
        self.sync, self.scaler, self.clip_grad = sync, scaler, clip_grad
        self.amp_dtype, self.device_type = amp_dtype, device_type
        self.before_update = before_update
        self.updates = 0

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def zero_grad(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]

    def update(self) -> None:
        if self.optimizer is None:
            if self.before_update is not None:
                self.before_update()
            return
        if self.sync is not None:
            self.sync()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.before_update is not None:
            self.before_update()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self._params(), self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.updates += 1


def train_step(model, method, x_seq: torch.Tensor, y: torch.Tensor, step: Step):
    """Zero the gradients, then run ``method`` on one batch through ``step``; returns ``(loss, logits)``."""
    step.zero_grad()
    return method.run(model, x_seq, y, step)
