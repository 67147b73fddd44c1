"""``snn continual``: run one method on a continual-learning benchmark, write the accuracy matrix (JSON) and
its heatmap (PNG).

    snn continual --benchmark pfmnist --tasks 10 --method hlop --train-method bptt --epochs 1 --T 4 \\
        --json results.json --out runs/pfmnist-hlop
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import (existing_dir, int_list, nonnegative_float, nonnegative_int, positive_float, positive_int,
                   refuse_to_overwrite, seed)
from ..io import atomic_write_json
from .baselines import STRATEGIES
from .experiment import DEFAULTS, run
from .methods import METHODS
from .metrics import plot_matrix

__all__ = ["register", "main"]


# What `snn continual --out DIR` writes; a new run refuses a DIR holding either unless --overwrite.
RESULTS = ("matrix.json", "matrix.png")


def register(subparsers) -> None:
    from ..cli import add_json_option, declare_output

    p = subparsers.add_parser("continual", help="continual learning: HLOP and baselines on task sequences",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", choices=sorted(DEFAULTS), default="pfmnist",
                   help="pfmnist / sfmnist: permuted / split Fashion-MNIST; pdigits / sdigits: the same on 8x8 digits")
    p.add_argument("--method", choices=STRATEGIES, default="hlop")
    p.add_argument("--train-method", choices=METHODS, default="bptt")
    p.add_argument("--tasks", type=positive_int, default=None, help="number of tasks (default 10 permuted, 5 split)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per task")
    p.add_argument("--T", type=positive_int, default=None, help="time steps")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--lr", type=positive_float, default=None, help="SGD learning rate")
    p.add_argument("--lr-later", type=positive_float, default=None,
                   help="SGD learning rate of the tasks after the first (default per benchmark; none: --lr)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                   help="step size within each task: constant, or cosine from --lr down to 0")
    p.add_argument("--hidden", type=int_list(1), default=None, help="hidden layer sizes, e.g. 256,256")
    p.add_argument("--n-train", type=positive_int, default=None, help="training samples per task (default all)")
    p.add_argument("--n-test", type=positive_int, default=None, help="test samples per task (default all)")
    p.add_argument("--hlop-k-first", type=int_list(0), default=None, help="lateral neurons per layer for task 1")
    p.add_argument("--hlop-k-rest", type=int_list(0), default=None, help="lateral neurons per layer for later tasks")
    p.add_argument("--hlop-lr", type=positive_float, default=None, help="Hebbian learning rate (relative to E|x|^2)")
    p.add_argument("--hlop-iterations", type=positive_int, default=None, help="Oja updates per batch")
    p.add_argument("--hlop-consolidate-batches", type=nonnegative_int, default=None,
                   help="forward-only batches of Hebbian learning at the end of each task")
    p.add_argument("--hlop-consolidate-iterations", type=positive_int, default=None,
                   help="Oja updates per consolidation batch")
    p.add_argument("--hlop-hebbian-every", type=positive_int, default=None,
                   help="Oja updates on every n-th training batch only")
    p.add_argument("--hlop-spiking-steps", type=positive_int, default=None,
                   help="spiking lateral neurons: quantise their response to spike counts over this many steps")
    p.add_argument("--ewc-lambda", type=nonnegative_float, default=None)
    p.add_argument("--replay-per-task", type=positive_int, default=None, help="replay buffer samples per task")
    p.add_argument("--seed", type=seed, default=None)
    p.add_argument("--data-dir", type=existing_dir, default=None, help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--out", default=None, help="directory for matrix.json and matrix.png (refused if it holds them "
                                               "already, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace matrix.json and matrix.png in --out")
    p.add_argument("--quiet", action="store_true", help="no per-task log lines")
    declare_output(p, "out", "dir")
    add_json_option(p)
    p.set_defaults(func=main)


def main(args) -> dict:
    if args.out and not args.overwrite:
        refuse_to_overwrite(args.out, RESULTS)
    overrides = dict(n_tasks=args.tasks, epochs=args.epochs, T=args.T, batch_size=args.batch_size, lr=args.lr,
                     lr_later=args.lr_later, lr_schedule=args.lr_schedule,
                     hidden=args.hidden, n_train=args.n_train, n_test=args.n_test, hlop_k_first=args.hlop_k_first,
                     hlop_k_rest=args.hlop_k_rest, hlop_lr=args.hlop_lr, hlop_spiking_steps=args.hlop_spiking_steps,
                     hlop_iterations=args.hlop_iterations, hlop_consolidate_batches=args.hlop_consolidate_batches,
                     hlop_consolidate_iterations=args.hlop_consolidate_iterations,
                     hlop_hebbian_every=args.hlop_hebbian_every,
                     ewc_lambda=args.ewc_lambda, replay_per_task=args.replay_per_task, seed=args.seed)
    summary = run(args.benchmark, args.method, args.train_method, log=None if args.quiet else print,
                  data_dir=args.data_dir, **overrides)
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "matrix.json", summary)
        plot_matrix(summary["matrix"], out / "matrix.png",
                    title=f"{args.benchmark} {args.method} ({args.train_method}): ACC {100 * summary['acc']:.1f}")
        summary["matrix_json"], summary["heatmap"] = str(out / "matrix.json"), str(out / "matrix.png")
    return summary
