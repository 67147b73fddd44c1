"""Continual-learning strategies for :class:`snn.continual.trainer.ContinualTrainer`.

A strategy sees the training loop through a few hooks (all optional, no-ops in :class:`Strategy`)::

    attach(model, trainer)            once, before the first task
    begin_task(t, task)
    for each batch:  before_batch() → method step (current task's gradients) → after_backward()
                     → extra_batches(): more (x, y, heads) whose gradients are added as they are (replay)
                     → penalty(): a differentiable term added to the loss (EWC) → optimizer.step() → after_step()
    end_task(t, task)

- :class:`FineTune`: nothing (the lower bound: plain sequential training).
- :class:`EWC`: online elastic weight consolidation, ``L + (λ/2) Σ_i F_i (θ_i - θ*_i)²`` with ``F`` the
  running sum over tasks of the diagonal empirical Fisher ``E[(∂L/∂θ)²]`` (estimated from mini-batch
  gradients of the training method itself), the sum rescaled to a maximum of 1 after each task so that ``λ`` is
  the stiffness of the most important weight (SGD with step α and momentum β stays stable for
  ``α λ < 2(1 + β)``), and ``θ*`` the weights after the last task.
- :class:`Replay`: a buffer of ``per_task`` random training samples of each finished task; every batch adds
  the gradient of a replay batch of ``batch_size`` samples drawn from it.
- :class:`HLOPStrategy`: HLOP (:mod:`snn.continual.hlop`): records presynaptic traces in the forward pass,
  projects the current task's gradients after backward, learns the lateral neurons after each step.
- :class:`Compose`: several strategies in order (``hlop+replay``: the current task's gradient is projected,
  the replayed samples' gradient is not).
The multitask upper bound is not a strategy: :meth:`ContinualTrainer.run_multitask` trains on all tasks at once.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .hlop import HLOP

__all__ = ["Strategy", "FineTune", "EWC", "Replay", "HLOPStrategy", "Compose", "STRATEGIES", "make_strategy",
           "k_schedule"]


class Strategy:
    """No-op hooks; subclasses override what they need."""

    name = "strategy"

    def attach(self, model, trainer) -> None:
        self.model, self.trainer = model, trainer

    def begin_task(self, t: int, task) -> None:
        pass

    def before_batch(self) -> None:
        pass

    def after_backward(self) -> None:
        pass

    def extra_batches(self):
        return ()

    def penalty(self):
        return None

    def after_step(self) -> None:
        pass

    def end_task(self, t: int, task) -> None:
        pass

    def info(self) -> dict:
        return {}


class FineTune(Strategy):
    """Sequential training without protection."""

    name = "finetune"


class EWC(Strategy):
    """Online EWC: ``(λ/2) Σ F (θ - θ*)²`` with a Fisher summed over finished tasks."""

    name = "ewc"

    def __init__(self, lam: float = 20.0, fisher_batches: int = 20):
        if lam < 0:
            raise ValueError(f"EWC: lambda must be >= 0, got {lam}")
        if fisher_batches < 1:
            raise ValueError(f"EWC: fisher_batches must be >= 1, got {fisher_batches}")
        self.lam, self.fisher_batches = float(lam), int(fisher_batches)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def penalty(self):
        if not self.fisher:
            return None
        total = 0.0
        for n, p in self.model.named_parameters():
            if n in self.fisher:
                total = total + (self.fisher[n] * (p - self.anchor[n]) ** 2).sum()
        return 0.5 * self.lam * total

    def end_task(self, t, task) -> None:
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        count = 0
        for x, y in self.trainer.batches(task.x_train, task.y_train, shuffle=True):
            self.model.zero_grad(set_to_none=True)
            self.trainer.step(x, y, task.head)
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2
            count += 1
            if count >= self.fisher_batches:
                break
        self.model.zero_grad(set_to_none=True)
        for n, f in fisher.items():
            self.fisher[n] = self.fisher.get(n, 0) + f / max(count, 1)
            self.anchor[n] = params[n].detach().clone()
        top = max(float(f.max()) for f in self.fisher.values()) or 1.0
        self.fisher = {n: f / top for n, f in self.fisher.items()}

    def info(self) -> dict:
        return {"lambda": self.lam, "fisher_batches": self.fisher_batches}


class Replay(Strategy):
    """Experience replay from a small buffer (``per_task`` samples of each finished task)."""

    name = "replay"

    def __init__(self, per_task: int = 100, batch_size: int = 32, seed: int = 0):
        if per_task < 1 or batch_size < 1:
            raise ValueError(f"Replay: per_task and batch_size must be >= 1, got {per_task}, {batch_size}")
        self.per_task, self.batch_size = int(per_task), int(batch_size)
        self.gen = torch.Generator().manual_seed(seed)
        self.x = self.y = self.h = None

    def extra_batches(self):
        if self.x is None:
            return ()
        idx = torch.randint(len(self.x), (min(self.batch_size, len(self.x)),), generator=self.gen)
        return ((self.x[idx], self.y[idx], self.h[idx]),)

    def end_task(self, t, task) -> None:
        idx = torch.randperm(len(task.x_train), generator=self.gen)[:self.per_task]
        x, y = task.x_train[idx], task.y_train[idx]
        h = torch.full((len(idx),), task.head, dtype=torch.long)
        if self.x is None:
            self.x, self.y, self.h = x, y, h
        else:
            self.x, self.y, self.h = torch.cat([self.x, x]), torch.cat([self.y, y]), torch.cat([self.h, h])

    def info(self) -> dict:
        return {"per_task": self.per_task, "replay_batch": self.batch_size,
                "buffer": 0 if self.x is None else len(self.x)}


def k_schedule(first: Sequence[int], rest: Sequence[int]):
    """``k(task, layer, n)``: ``first[layer]`` lateral neurons for task 0, ``rest[layer]`` for later tasks."""
    first, rest = list(first), list(rest)
    if len(first) != len(rest):
        raise ValueError(f"k_schedule: first and rest need one entry per layer, got {first} and {rest}")
    return lambda task, layer, n: (first if task == 0 else rest)[layer]


class HLOPStrategy(Strategy):
    """HLOP as a strategy. ``layers=None`` protects every Linear of the body, and the head too when there is
    a single shared head (per-task heads only ever see their own task). Other keywords go to :class:`HLOP`."""

    name = "hlop"

    def __init__(self, layers: Sequence[str] | None = None, **hlop_kw):
        self.layers, self.hlop_kw = layers, hlop_kw
        self.hlop: HLOP | None = None

    def attach(self, model, trainer) -> None:
        super().attach(model, trainer)
        layers = self.layers
        if layers is None:
            layers = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
                      and (len(getattr(model, "heads", ())) == 1 or not n.startswith("heads."))]
        self.hlop = HLOP(model, layers=layers, **self.hlop_kw)

    def begin_task(self, t, task) -> None:
        self.hlop.begin_task(t)

    def before_batch(self) -> None:
        self.hlop.collect(True)

    def after_backward(self) -> None:
        self.hlop.collect(False)
        self.hlop.project_gradients()

    def after_step(self) -> None:
        self.hlop.hebbian_update()

    def end_task(self, t, task) -> None:
        self.hlop.end_task()

    def info(self) -> dict:
        return {"subspace": self.hlop.sizes() if self.hlop else {}}


class Compose(Strategy):
    """Run several strategies' hooks in order."""

    def __init__(self, *parts: Strategy):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def attach(self, model, trainer) -> None:
        super().attach(model, trainer)
        for p in self.parts:
            p.attach(model, trainer)

    def begin_task(self, t, task) -> None:
        for p in self.parts:
            p.begin_task(t, task)

    def before_batch(self) -> None:
        for p in self.parts:
            p.before_batch()

    def after_backward(self) -> None:
        for p in self.parts:
            p.after_backward()

    def extra_batches(self):
        return tuple(b for p in self.parts for b in p.extra_batches())

    def penalty(self):
        terms = [t for t in (p.penalty() for p in self.parts) if t is not None]
        return sum(terms) if terms else None

    def after_step(self) -> None:
        for p in self.parts:
            p.after_step()

    def end_task(self, t, task) -> None:
        for p in self.parts:
            p.end_task(t, task)

    def info(self) -> dict:
        return {k: v for p in self.parts for k, v in p.info().items()}


STRATEGIES = ("hlop", "finetune", "ewc", "replay", "hlop+replay", "multitask")


def make_strategy(name: str, hlop: dict | None = None, ewc: dict | None = None, replay: dict | None = None):
    """A strategy by name (``multitask`` → ``None``: the trainer trains on all tasks jointly)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown method {name!r}; accepted: {STRATEGIES}")
    hlop, ewc, replay = hlop or {}, ewc or {}, replay or {}
    return {"hlop": lambda: HLOPStrategy(**hlop), "finetune": FineTune, "ewc": lambda: EWC(**ewc),
            "replay": lambda: Replay(**replay), "hlop+replay": lambda: Compose(HLOPStrategy(**hlop), Replay(**replay)),
            "multitask": lambda: None}[name]()
