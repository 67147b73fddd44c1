"""``ContinualTrainer``: learn a sequence of tasks one after another and fill the accuracy matrix.

For task ``t`` (a fresh SGD optimiser per task; no weight decay, so HLOP's projection stays exact; with
``lr_schedule='cosine'`` the step size falls from ``lr`` to 0 over the task's batches,
``lr_i = lr · (1 + cos(π i / n)) / 2``; ``lr_later``, when given, replaces ``lr`` for every task after the
first)::

    strategy.begin_task(t)
    for epoch, batch:  strategy.before_batch(); the training step of snn.train.fit (zero_grad, the method's
                       forward and backward, then before the optimizer step: strategy.after_backward(),
                       gradients of strategy.extra_batches(), strategy.penalty().backward()); strategy.after_step()
    strategy.end_task(t)
    R[t, j] = test accuracy on task j for j <= t

Training time (wall clock ``train_time_s`` and process CPU time ``train_cpu_s``, the steadier one on a shared
machine) counts everything above except the evaluations. :meth:`run_multitask` is the upper bound:
one model trained on the union of all tasks (each sample with its task's head), evaluated once.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from .. import data as snn_data
from ..train.step import Step
from . import metrics
from .methods import TrainMethod, get_method
from .tasks import Task

__all__ = ["ContinualTrainer", "evaluate", "LR_SCHEDULES"]

LR_SCHEDULES = ("constant", "cosine")


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, head, T: int, batch_size: int = 1000, logits=None) -> float:
    """Test accuracy (fraction) of ``model`` on ``(x, y)`` through ``head``; ``logits(model, x, head, T)`` is the
    training method's readout (BPTT's mean output over time by default)."""
    logits = logits or get_method("bptt").logits
    was = model.training
    model.eval()
    correct = 0
    for xb, yb in snn_data.batches(x, y, batch_size):
        correct += int((logits(model, xb, head, T).argmax(1) == yb).sum())
    model.train(was)
    return correct / max(len(x), 1)


class ContinualTrainer:
    """Train ``model`` on a task sequence with a strategy and a training method.

    ``model(x_seq, heads)`` as :class:`snn.continual.net.MultiHeadSNN`; ``strategy`` from
    :mod:`snn.continual.baselines` (``None`` = fine-tuning); ``method`` a name (``bptt``, ``dsr``, ``ottt``)
    or a :class:`snn.continual.methods.TrainMethod`.
    """

    def __init__(self, model, strategy=None, method: str | TrainMethod = "bptt", epochs: int = 1, lr: float = 0.05,
                 momentum: float = 0.9, batch_size: int = 128, T: int = 4, seed: int = 0,
                 log: Callable[[str], None] | None = print, lr_schedule: str = "constant",
                 lr_later: float | None = None):
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs}")
        if int(T) != T or T < 1:
            raise ValueError(f"T must be a positive integer number of time steps, got {T}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if lr_later is not None and not (lr_later > 0 and math.isfinite(lr_later)):
            raise ValueError(f"lr_later must be a positive number or None, got {lr_later}")
        self.lr_schedule = lr_schedule
        self.lr_later = None if lr_later is None else float(lr_later)
        from .baselines import FineTune

        self.model = model
        self.strategy = strategy if strategy is not None else FineTune()
        self.method = get_method(method) if isinstance(method, str) else method
        self.epochs, self.lr, self.momentum = int(epochs), float(lr), float(momentum)
        self.batch_size, self.T = int(batch_size), int(T)
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.log = log or (lambda s: None)
        self.strategy.attach(model, self)

    # -- pieces the strategies use -------------------------------------------------------------------
    def batches(self, x, y, shuffle: bool = True):
        return snn_data.batches(x, y, self.batch_size, shuffle=shuffle, generator=self.gen)

    def step(self, x, y, heads) -> float:
        """One step of the training method (gradients accumulate into ``.grad``)."""
        return self.method.step(self.model, x, y, heads, self.T)

    def accuracy(self, task: Task) -> float:
        return evaluate(self.model, task.x_test, task.y_test, task.head, self.T, logits=self.method.logits)

    def _optimizer(self, lr: float | None = None):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=self.lr if lr is None else lr, momentum=self.momentum)

    def _strategy_gradients(self) -> None:
        """What the strategy does to the gradients before the optimizer step (projection, replay, penalty)."""
        s = self.strategy
        s.after_backward()
        for xr, yr, hr in s.extra_batches():
            self.step(xr, yr, hr)
        pen = s.penalty()
        if pen is not None:
            pen.backward()

    def _train_batches(self, opt, batches, heads_of, n_batches: int = 0, done: int = 0) -> float:
        """One pass over ``batches``; with the cosine schedule, batch ``done + i`` of ``n_batches`` in all
        (from the optimiser's own starting step size)."""
        s, losses = self.strategy, []
        lr0 = opt.defaults["lr"]
        for i, (x, y) in enumerate(batches):
            if self.lr_schedule == "cosine" and n_batches:
                for g in opt.param_groups:
                    g["lr"] = lr0 * 0.5 * (1.0 + math.cos(math.pi * (done + i) / n_batches))
            s.before_batch()
            step = Step(opt, denom=len(y), before_update=self._strategy_gradients)
            losses.append(self.method.train(self.model, x, y, heads_of(x), self.T, step))
            s.after_step()
        return float(np.mean(losses)) if losses else math.nan

    # -- the sequence -------------------------------------------------------------------------------
    def run(self, tasks: Sequence[Task]) -> dict:
        """Train on ``tasks`` in order; returns the accuracy matrix, ACC, BWT and timings."""
        p = len(tasks)
        if p == 0:
            raise ValueError("no tasks to learn")
        R = np.full((p, p), np.nan)
        train_time, cpu_time, task_times = 0.0, 0.0, []
        self.model.train()
        for t, task in enumerate(tasks):
            t0, c0 = time.perf_counter(), time.process_time()
            self.strategy.begin_task(t, task)
            opt = self.opt = self._optimizer(self.lr if t == 0 or self.lr_later is None else self.lr_later)
            per_epoch = math.ceil(len(task.x_train) / self.batch_size)
            for epoch in range(self.epochs):
                loss = self._train_batches(opt, self.batches(task.x_train, task.y_train), lambda x: task.head,
                                           per_epoch * self.epochs, per_epoch * epoch)
            self.strategy.end_task(t, task)
            dt = time.perf_counter() - t0
            train_time += dt
            cpu_time += time.process_time() - c0
            task_times.append(dt)
            for j in range(t + 1):
                R[t, j] = self.accuracy(tasks[j])
            self.log(f"  task {t + 1}/{p} {task.name}: loss {loss:.3f}, {dt:.1f}s, acc "
                     + " ".join(f"{100 * v:.1f}" for v in R[t, :t + 1]))
        return {**metrics.summary(R), "train_time_s": train_time, "train_cpu_s": cpu_time, "task_times_s": task_times,
                "strategy": self.strategy.name, **self.strategy.info()}

    def run_multitask(self, tasks: Sequence[Task]) -> dict:
        """Upper bound: train on the union of all tasks (``epochs`` passes), evaluate every task once.
        The matrix has only its last row; BWT is undefined (``None``)."""
        p = len(tasks)
        if p == 0:
            raise ValueError("no tasks to learn")
        x = torch.cat([t.x_train for t in tasks])
        y = torch.cat([t.y_train for t in tasks])
        h = torch.cat([torch.full((len(t.x_train),), t.head, dtype=torch.long) for t in tasks])
        ids = torch.arange(len(x))
        single = len({t.head for t in tasks}) == 1
        t0, c0 = time.perf_counter(), time.process_time()
        self.model.train()
        opt = self.opt = self._optimizer()
        for epoch in range(self.epochs):
            # heads travel with the samples through their indices
            idx_batches = list(snn_data.batches(ids, ids, self.batch_size, True, self.gen))
            batches = ((x[i], y[i]) for i, _ in idx_batches)
            heads = iter([tasks[0].head if single else h[i] for i, _ in idx_batches])
            loss = self._train_batches(opt, batches, lambda _x: next(heads), len(idx_batches) * self.epochs,
                                       len(idx_batches) * epoch)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        R = np.full((p, p), np.nan)
        for j in range(p):
            R[p - 1, j] = self.accuracy(tasks[j])
        self.log(f"  multitask: loss {loss:.3f}, {dt:.1f}s, acc " + " ".join(f"{100 * v:.1f}" for v in R[-1]))
        return {**metrics.summary(R), "train_time_s": dt, "train_cpu_s": cpu, "task_times_s": [dt],
                "strategy": "multitask"}
