"""One continual-learning experiment from plain settings: build the tasks, the network, the strategy and the
trainer, run, and return a JSON-ready summary. The CLI (``snn continual``) and
``benchmarks/continual_fashion.py`` both call :func:`run`.

:data:`DEFAULTS` holds the full configuration per benchmark (the one benchmarks/RESULTS.md reports);
any keyword passed to :func:`run` overrides it.
"""
from __future__ import annotations

import time

import torch

from . import tasks as task_builders
from .baselines import STRATEGIES, k_schedule, make_strategy
from .methods import METHODS, get_method
from .net import mlp
from .trainer import ContinualTrainer

__all__ = ["DEFAULTS", "run", "config"]

# Shared settings. SGD steps fall along a cosine within each task (all methods), from lr in the first task and from
# lr_later (None: lr) in the later ones; HLOP: Oja step 4/E‖x_res‖², one update on every second training batch,
# then 50 forward-only consolidation batches of 4 updates each, and the new lateral neurons orthonormalised at
# consolidation (without it, step 4 lets new neurons drift into the old subspace: split Fashion-MNIST measured
# 89.9 / -4.5 instead of 98.0 / -0.1).
_COMMON = dict(T=4, v_threshold=1.0, epochs=1, batch_size=64, lr=0.05, lr_later=None, momentum=0.9,
               lr_schedule="cosine", n_train=None, n_test=None, seed=0, hlop_lr=4.0, hlop_iterations=1,
               hlop_momentum=0.9, hlop_trace="rate", hlop_spiking_steps=None, hlop_consolidate_batches=50,
               hlop_consolidate_iterations=4, hlop_hebbian_every=2, hlop_orthonormalise=True, ewc_lambda=20.0,
               ewc_batches=50, replay_per_task=100, replay_batch=32)

DEFAULTS = {
    # 10 permuted tasks, shared 10-way head: protect both hidden layers and the head (inputs 784+1, 512+1, 512+1).
    # 512 hidden neurons: with 256 the later tasks need larger weight changes in the shrinking free space and
    # HLOP's forgetting stays near -2 points whatever k (see benchmarks/RESULTS-archive.md, continual learning)
    # lr_later 0.025 (every method): HLOP's forgetting comes from the later tasks' weight changes in the free space;
    # a smaller step after the first task measured BWT -1.70 -> -1.30 (0.0125: -1.12, but ACC 80.6) on seed 0;
    # seeds 0-2: -1.36 +- 0.07, ACC 82.1 (83.2 with lr for every task: later tasks learn less), see
    # benchmarks/RESULTS-archive.md
    "pfmnist": dict(_COMMON, n_tasks=10, hidden=(512, 512), hlop_k_first=(100, 160, 160), hlop_k_rest=(70, 40, 40),
                    lr_later=0.025),
    # 5 tasks of 2 classes, a head per task: protect the body only. lr_later 0.1 (every method): each task brings a
    # fresh head and HLOP's projected body gradient is weaker, so with lr for every task its later tasks are
    # under-trained (diagonal 99.4 vs replay's 99.9); 5 seeds, lr -> 0.1 for the later tasks: HLOP 98.28 -> 98.52,
    # replay 98.47 -> 98.42 (0.2: replay 97.8)
    "sfmnist": dict(_COMMON, n_tasks=5, hidden=(256, 256), hlop_k_first=(60, 40), hlop_k_rest=(40, 20), lr_later=0.1),
}
# 8x8 digits: 64 inputs drive the hidden LIF neurons less, so their threshold is lower (lr_later not measured
# there: one step size for every task)
DEFAULTS["pdigits"] = dict(DEFAULTS["pfmnist"], n_tasks=4, hidden=(128, 128), epochs=5, batch_size=32, v_threshold=0.5,
                           hlop_k_first=(24, 40, 40), hlop_k_rest=(12, 20, 20), lr_later=None)
DEFAULTS["sdigits"] = dict(DEFAULTS["sfmnist"], hidden=(128, 128), epochs=10, batch_size=16, v_threshold=0.5,
                           hlop_k_first=(16, 24), hlop_k_rest=(8, 16), lr_later=None)


def config(benchmark: str, **overrides) -> dict:
    """The defaults of ``benchmark`` with ``overrides`` (``None`` values are ignored); unknown keys are errors."""
    if benchmark not in DEFAULTS:
        raise ValueError(f"unknown benchmark {benchmark!r}; accepted: {sorted(DEFAULTS)}")
    cfg = dict(DEFAULTS[benchmark])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def run(benchmark: str, method: str, train_method: str = "bptt", log=print, data_dir=None, **overrides) -> dict:
    """Run ``method`` (one of :data:`STRATEGIES`) on ``benchmark`` with ``train_method``; returns the summary
    (accuracy matrix, ACC, BWT, training time, settings)."""
    if method not in STRATEGIES:
        raise ValueError(f"unknown method {method!r}; accepted: {STRATEGIES}")
    if train_method not in METHODS:
        raise ValueError(f"unknown training method {train_method!r}; accepted: {METHODS}")
    cfg = config(benchmark, **overrides)
    torch.manual_seed(cfg["seed"])
    tasks = task_builders.build(benchmark, cfg["n_tasks"], cfg["n_train"], cfg["n_test"], cfg["seed"], data_dir)
    heads = sorted({t.head for t in tasks})
    tm = get_method(train_method)
    model = mlp(tasks[0].x_train[0].numel(), cfg["hidden"], tasks[0].n_classes, len(heads),
                v_threshold=cfg["v_threshold"], neuron_kind=tm.neuron_kind)
    n_protected = len(cfg["hidden"]) + (1 if len(heads) == 1 else 0)
    for key in ("hlop_k_first", "hlop_k_rest"):
        if len(cfg[key]) != n_protected:
            raise ValueError(f"{key} needs one entry per protected layer ({n_protected}), got {cfg[key]}")
    strategy = make_strategy(
        method,
        hlop=dict(k=k_schedule(cfg["hlop_k_first"], cfg["hlop_k_rest"]), lr=cfg["hlop_lr"],
                  iterations=cfg["hlop_iterations"], momentum=cfg["hlop_momentum"], trace=cfg["hlop_trace"],
                  spiking_steps=cfg["hlop_spiking_steps"], seed=cfg["seed"], orthonormalise=cfg["hlop_orthonormalise"],
                  consolidate_batches=cfg["hlop_consolidate_batches"],
                  consolidate_iterations=cfg["hlop_consolidate_iterations"], hebbian_every=cfg["hlop_hebbian_every"]),
        ewc=dict(lam=cfg["ewc_lambda"], fisher_batches=cfg["ewc_batches"]),
        replay=dict(per_task=cfg["replay_per_task"], batch_size=cfg["replay_batch"], seed=cfg["seed"]))
    trainer = ContinualTrainer(model, strategy, method=tm, epochs=cfg["epochs"], lr=cfg["lr"],
                               momentum=cfg["momentum"], batch_size=cfg["batch_size"], T=cfg["T"], seed=cfg["seed"],
                               log=log, lr_schedule=cfg["lr_schedule"], lr_later=cfg["lr_later"])
    t0 = time.perf_counter()
    result = trainer.run_multitask(tasks) if method == "multitask" else trainer.run(tasks)
    return {"benchmark": benchmark, "method": method, "train_method": train_method, **result,
            "wall_time_s": time.perf_counter() - t0, "tasks": [t.name for t in tasks],
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}}
