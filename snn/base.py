"""``MemoryModule``: the base of every module that keeps state across calls, and the guard that turns a
backward pass through a state left over from an earlier, already-backpropagated batch into a clear error."""
from __future__ import annotations

from collections import deque

import torch
import torch.nn as nn

__all__ = ["StepMode", "MemoryModule", "STEP_MODES", "watch_backward", "guard_carried_state", "graph_freed"]

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


# -- a state carried into a new batch after its graph was freed -------------------------------------------
_FREED_MARKS = ("backward through the graph a second time", "already been freed")


def watch_backward(out: torch.Tensor) -> list | None:
    """A token ``[False]`` that turns ``[True]`` when a backward pass reaches ``out`` (None when ``out`` has no
    gradient): it tells whether the graph that produced a module's state has been backpropagated. Under
    torch.compile no token is kept (a hook that writes Python state would break the graph): the guard is eager-only."""
    if torch.compiler.is_compiling() or not (torch.is_grad_enabled() and out.requires_grad):
        return None
    token = [False]

    def mark(grad):
        token[0] = True

    out.register_hook(mark)
    return token


def _saved_freed(node) -> bool:
    """Whether autograd freed the tensors this graph node saved (reading them then raises)."""
    try:
        if hasattr(node, "saved_tensors"):  # custom autograd.Function nodes
            node.saved_tensors
        for name in dir(node):
            if name.startswith("_saved_"):  # built-in nodes (MulBackward0._saved_other, ...)
                getattr(node, name)
    except RuntimeError as e:
        return any(m in str(e) for m in _FREED_MARKS)
    return False


def graph_freed(node, limit: int = 256) -> bool:
    """Whether the graph reachable from ``node`` (the first ``limit`` nodes, breadth first) holds a node whose
    saved tensors a backward pass without ``retain_graph`` already freed."""
    seen, todo = set(), deque([node])
    while todo and len(seen) < limit:
        n = todo.popleft()
        if n is None or n in seen:
            continue
        seen.add(n)
        if _saved_freed(n):
            return True
        todo.extend(nxt for nxt, _ in n.next_functions)
    return False


class _FreedStateGuard(torch.autograd.Function):
    """Identity on a carried state whose graph was freed; its backward raises the clear error in place of
    torch's 'Trying to backward through the graph a second time'."""

    @staticmethod
    def forward(ctx, state, who):
        ctx.who = who
        return state.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(
            f"{ctx.who}: this backward pass reaches the state left over from an earlier batch, whose graph an "
            f"earlier backward pass already freed: the state was not reset. Call snn.reset(net) (that is "
            f"snn.functional.reset) between batches, or detach the state (snn.train.ottt.detach_states(net)) to "
            f"carry it on without a gradient")


def guard_carried_state(state: torch.Tensor, token: list | None, who: str) -> torch.Tensor:
    """``state`` as it is, or, when its graph has been backpropagated (``token``) and freed, behind a node whose
    backward raises a clear error naming ``who`` and :func:`snn.functional.reset`. Checks only states that carry
    a graph already reached by a backward pass, so the usual paths (reset, detached or no-grad states, one
    graph over all steps) cost nothing."""
    if not (token and token[0]) or state.grad_fn is None or not torch.is_grad_enabled():
        return state
    if not graph_freed(state.grad_fn):
        return state  # backpropagated with retain_graph=True: a second backward pass is legitimate
    return _FreedStateGuard.apply(state, who)
