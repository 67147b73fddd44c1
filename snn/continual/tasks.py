"""Task sequences for continual learning.

- permuted: P tasks on the same images, task p applies one fixed random pixel permutation ``π_p`` to every
  image (``x_p = x[π_p]``); all 10 classes, one shared head (domain-incremental).
- split: 5 tasks of 2 classes each ((0,1), (2,3), ...), labels renumbered 0/1 within a task, one head per
  task (task-incremental).

Both work on ``'fashion-mnist'`` (28x28) and ``'digits'`` (8x8, for quick runs). Images stay ``[N, 1, H, W]``
in [0, 1]; a permuted task stores its permutation and applies it when its data are first read.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import data as snn_data

__all__ = ["Task", "BENCHMARKS", "permuted", "split", "build", "subsample"]

BENCHMARKS = {"pfmnist": ("permuted", "fashion-mnist"), "sfmnist": ("split", "fashion-mnist"),
              "pdigits": ("permuted", "digits"), "sdigits": ("split", "digits")}


@dataclass
class Task:
    """One task: its data, which head it uses and how many classes that head has."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    head: int = 0
    n_classes: int = 10


def subsample(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int = 0):
    """A fixed random subset of ``n`` samples (all when ``n`` is None or larger than the set)."""
    if n is None or n >= len(x):
        return x, y
    if n < 1:
        raise ValueError(f"sample count must be >= 1, got {n}")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


def _load(dataset: str, n_train, n_test, seed, data_dir):
    xtr, ytr = subsample(*snn_data.load(dataset, "train", data_dir), n_train, seed)
    xte, yte = subsample(*snn_data.load(dataset, "test", data_dir), n_test, seed + 1)
    return xtr, ytr, xte, yte


def _permute(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)[:, perm].reshape(x.shape)


def permuted(n_tasks: int = 10, dataset: str = "fashion-mnist", n_train: int | None = None,
             n_test: int | None = None, seed: int = 0, data_dir=None) -> list[Task]:
    """``n_tasks`` pixel-permuted copies of ``dataset`` sharing one 10-class head."""
    if int(n_tasks) != n_tasks or n_tasks < 1:
        raise ValueError(f"permuted: the number of tasks must be a positive integer, got {n_tasks}")
    xtr, ytr, xte, yte = _load(dataset, n_train, n_test, seed, data_dir)
    g = torch.Generator().manual_seed(seed)
    d = xtr[0].numel()
    tasks = []
    for p in range(int(n_tasks)):
        perm = torch.randperm(d, generator=g)
        tasks.append(Task(f"permuted-{p + 1}", _permute(xtr, perm), ytr, _permute(xte, perm), yte, 0, 10))
    return tasks


def split(n_tasks: int = 5, dataset: str = "fashion-mnist", n_train: int | None = None, n_test: int | None = None,
          seed: int = 0, data_dir=None) -> list[Task]:
    """``dataset``'s 10 classes split into ``n_tasks`` (1..5) tasks of 2 classes, one head per task."""
    if int(n_tasks) != n_tasks or not 1 <= n_tasks <= 5:
        raise ValueError(f"split: the number of tasks must be an integer in 1..5 (pairs of 10 classes), got {n_tasks}")
    xtr, ytr, xte, yte = _load(dataset, None, None, seed, data_dir)
    tasks = []
    for t in range(int(n_tasks)):
        a, b = 2 * t, 2 * t + 1
        mtr, mte = (ytr == a) | (ytr == b), (yte == a) | (yte == b)
        x1, y1 = subsample(xtr[mtr], (ytr[mtr] == b).long(), None if n_train is None else n_train, seed + t)
        x2, y2 = subsample(xte[mte], (yte[mte] == b).long(), None if n_test is None else n_test, seed + 100 + t)
        tasks.append(Task(f"classes-{a}{b}", x1, y1, x2, y2, t, 2))
    return tasks


def build(benchmark: str, n_tasks: int | None = None, n_train: int | None = None, n_test: int | None = None,
          seed: int = 0, data_dir=None) -> list[Task]:
    """A benchmark by name (``pfmnist``, ``sfmnist``, ``pdigits``, ``sdigits``). ``n_train``/``n_test`` cap
    the samples per task. Default task counts: 10 permuted, 5 split."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; accepted: {sorted(BENCHMARKS)}")
    kind, dataset = BENCHMARKS[benchmark]
    if kind == "permuted":
        return permuted(10 if n_tasks is None else n_tasks, dataset, n_train, n_test, seed, data_dir)
    return split(5 if n_tasks is None else n_tasks, dataset, n_train, n_test, seed, data_dir)
