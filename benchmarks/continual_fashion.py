"""Continual learning on Fashion-MNIST: every method side by side.

Permuted Fashion-MNIST (10 tasks, shared head) and split Fashion-MNIST (5 tasks of 2 classes, a head per
task) with a spiking MLP (784-512-512 permuted, 784-256-256 split) trained by BPTT (T=4); methods: fine-tune,
EWC, replay, HLOP, HLOP+replay, multitask. For each (benchmark, method) it writes ``<out>/<benchmark>-<method>.json`` (matrix,
ACC, BWT, times, settings) and ``.png`` (heatmap), then ``<out>/summary.md`` with the tables and the goals.

The defaults are the full configuration (:data:`snn.continual.experiment.DEFAULTS`: all 60,000 training and
10,000 test images per task, 1 epoch per task). On a small shared CPU pass ``--n-train``/``--n-test``/
``--tasks`` to run what fits, and say so; ``--seed`` repeats a run with other tasks' data order and initial
weights. Runs are single-threaded (``torch.set_num_threads(1)``) so that two benchmarks can run side by side;
``--resume`` skips runs whose JSON exists.

    python benchmarks/continual_fashion.py --benchmarks pfmnist sfmnist --out benchmarks/results/continual
    python benchmarks/continual_fashion.py --report-only --out benchmarks/results/continual
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from snn.continual.experiment import run
from snn.continual.metrics import plot_matrix
from snn.io import atomic_write_bytes, atomic_write_json

METHODS = ("finetune", "ewc", "replay", "hlop", "hlop+replay", "multitask")


def _fmt(v, scale=100.0):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{scale * v:.1f}"


def _matrix_md(R) -> list[str]:
    p = len(R)
    lines = ["| after \\ on | " + " | ".join(str(j + 1) for j in range(p)) + " |",
             "|---|" + "---|" * p]
    for i, row in enumerate(R):
        lines.append(f"| {i + 1} | " + " | ".join(_fmt(v) for v in row) + " |")
    return lines


def report(out: Path, benchmarks) -> str:
    """Markdown tables (ACC, BWT, time; matrices; goals) from the JSON files under ``out``."""
    md = []
    for b in benchmarks:
        res = {m: json.loads((out / f"{b}-{m.replace('+', '_')}.json").read_text())
               for m in METHODS if (out / f"{b}-{m.replace('+', '_')}.json").exists()}
        if not res:
            continue
        s = next(iter(res.values()))["settings"]
        md += [f"### {b}: {s['n_tasks']} tasks, hidden {s['hidden']}, T={s['T']}, {s['epochs']} epoch(s)/task, "
               f"batch {s['batch_size']}, lr {s['lr']} (later tasks {s.get('lr_later') or s['lr']}), "
               f"n_train {s['n_train'] or 'all'}/task, "
               f"n_test {s['n_test'] or 'all'}/task", "",
               "| method | ACC (%) | BWT (points) | train wall (s) | train CPU (s) | CPU vs fine-tune |",
               "|---|---|---|---|---|---|"]
        ft = res.get("finetune", {}).get("train_cpu_s")
        for m, r in res.items():
            ratio = f"{r['train_cpu_s'] / ft:.2f}x" if ft else "-"
            md.append(f"| {m} | {_fmt(r['acc'])} | {_fmt(r['bwt'])} | {r['train_time_s']:.0f} | "
                      f"{r['train_cpu_s']:.0f} | {ratio} |")
        md.append("")
        h = res.get("hlop")
        if h:
            goals = [("HLOP BWT >= -1.5 points", h["bwt"] is not None and 100 * h["bwt"] >= -1.5)]
            if b.startswith("p") and "finetune" in res:
                goals.append(("HLOP ACC >= fine-tune + 15 points", h["acc"] - res["finetune"]["acc"] >= 0.15))
            for m in ("ewc", "replay"):
                if m in res:
                    goals.append((f"HLOP ACC > {m}", h["acc"] > res[m]["acc"]))
            if "multitask" in res:
                goals.append(("HLOP ACC within 3 points of multitask", res["multitask"]["acc"] - h["acc"] <= 0.03))
            if ft:
                goals.append(("HLOP training time <= 1.5x fine-tune's (CPU)", h["train_cpu_s"] <= 1.5 * ft))
            md += ["Goals: " + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in goals), ""]
        for m, r in res.items():
            if m == "multitask":
                continue
            md += [f"<details><summary>{b} {m}: accuracy matrix R[i, j] (%)</summary>", ""]
            md += _matrix_md(r["matrix"]) + ["", f"![{b} {m}]({b}-{m.replace('+', '_')}.png)", "", "</details>", ""]
    return "\n".join(md)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", nargs="+", default=["pfmnist", "sfmnist"], choices=["pfmnist", "sfmnist",
                                                                                         "pdigits", "sdigits"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--train-method", default="bptt", choices=("bptt", "dsr", "ottt"))
    ap.add_argument("--tasks", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-train", type=int, default=None, help="training samples per task (default: all)")
    ap.add_argument("--n-test", type=int, default=None, help="test samples per task (default: all)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the tasks, the network and the batches (default 0)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/continual")
    ap.add_argument("--resume", action="store_true", help="skip runs whose JSON already exists")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if not args.report_only:
        for b in args.benchmarks:
            for m in args.methods:
                path = out / f"{b}-{m.replace('+', '_')}.json"
                if args.resume and path.exists():
                    continue
                print(f"== {b} {m}", flush=True)
                r = run(b, m, args.train_method, n_tasks=args.tasks, epochs=args.epochs, n_train=args.n_train,
                        n_test=args.n_test, seed=args.seed)
                atomic_write_json(path, r)
                plot_matrix(r["matrix"], path.with_suffix(".png"), title=f"{b} {m}: ACC {100 * r['acc']:.1f}")
                print(f"   ACC {_fmt(r['acc'])}  BWT {_fmt(r['bwt'])}  train {r['train_time_s']:.0f}s wall, "
                      f"{r['train_cpu_s']:.0f}s CPU", flush=True)
    md = report(out, args.benchmarks)
    atomic_write_bytes(out / f"summary-{'-'.join(args.benchmarks)}.md", md.encode())
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
