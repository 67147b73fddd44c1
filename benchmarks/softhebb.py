"""SoftHebb + linear probe vs the same architecture with random frozen weights vs backprop, on Fashion-MNIST.

Per seed: a random subset of the training split (drawn with the seed), the first ``--test`` test images, one
network per variant (same initial weights). SoftHebb: the blocks learn layer by layer with the soft-WTA rule
(unsupervised, no backprop), then a linear probe on their frozen output; random: the same probe on the blocks'
initial weights (normalisation statistics from the data); backprop: every weight trained end to end. Reports the
mean and standard deviation over the seeds and the seconds per epoch of each training phase; writes the JSON and
the first layer's receptive fields of seed 0 to ``benchmarks/results/``.

    .venv/bin/python benchmarks/softhebb.py                              # 3 seeds, 10k train / 5k test
    .venv/bin/python benchmarks/softhebb.py --spiking --T 8              # the spiking blocks
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snn.hebbian.experiment import run_softhebb  # noqa: E402
from snn.io import atomic_write_json  # noqa: E402


def mean_sd(values) -> dict:
    values = list(values)
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--test", type=int, default=5000)
    p.add_argument("--arch", default='{"channels": [8], "kernels": [5], "temperatures": [3.0], "powers": [0.7], '
                                     '"lrs": [0.08]}', help="softhebb_cnn settings (JSON)")
    p.add_argument("--hebbian-epochs", type=int, default=1)
    p.add_argument("--hebbian-batch-size", type=int, default=16)
    p.add_argument("--probe-epochs", type=int, default=10)
    p.add_argument("--backprop-epochs", type=int, default=3)
    p.add_argument("--spiking", action="store_true")
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--v-threshold", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tag", default="softhebb", help="name of the JSON/PNG files under benchmarks/results/")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    arch = json.loads(args.arch)
    out_dir = ROOT / "benchmarks" / "results"
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:
        r = run_softhebb("fashion-mnist", args.train, args.test, hebbian_epochs=args.hebbian_epochs,
                         hebbian_batch_size=args.hebbian_batch_size, probe_epochs=args.probe_epochs,
                         backprop_epochs=args.backprop_epochs, T=args.T if args.spiking else None,
                         v_threshold=args.v_threshold, seed=seed,
                         fields_path=out_dir / f"{args.tag}_fields.png" if seed == args.seeds[0] else None, **arch)
        runs.append(r)
        print(f"seed {seed}: SoftHebb {100 * r['softhebb']['accuracy']:.2f}%  "
              f"random {100 * r['random']['accuracy']:.2f}%"
              f"  backprop {100 * r['backprop']['accuracy']:.2f}%  (Hebbian {r['hebbian_s_per_epoch']:.1f} s/epoch, "
              f"probe {r['softhebb']['probe_s_per_epoch']:.1f} s/epoch, backprop {r['backprop']['s_per_epoch']:.1f} "
              f"s/epoch)", flush=True)
    summary = {
        "settings": vars(args), "arch": arch, "machine": platform.processor() or platform.machine(),
        "threads": args.threads, "wall_s": time.perf_counter() - start,
        "softhebb": mean_sd(r["softhebb"]["accuracy"] for r in runs),
        "random": mean_sd(r["random"]["accuracy"] for r in runs),
        "backprop": mean_sd(r["backprop"]["accuracy"] for r in runs),
        "softhebb_minus_random_points": mean_sd(100 * (r["softhebb"]["accuracy"] - r["random"]["accuracy"])
                                                for r in runs),
        "hebbian_s_per_epoch": mean_sd(r["hebbian_s_per_epoch"] for r in runs),
        "probe_s_per_epoch": mean_sd(r["softhebb"]["probe_s_per_epoch"] for r in runs),
        "backprop_s_per_epoch": mean_sd(r["backprop"]["s_per_epoch"] for r in runs),
        "runs": runs,
    }
    atomic_write_json(out_dir / f"{args.tag}.json", summary)
    d = summary["softhebb_minus_random_points"]
    print(f"mean of {len(runs)} seeds: SoftHebb {100 * summary['softhebb']['mean']:.2f}%, random frozen "
          f"{100 * summary['random']['mean']:.2f}%, backprop {100 * summary['backprop']['mean']:.2f}%; "
          f"SoftHebb - random {d['mean']:+.2f} +- {d['sd']:.2f} points (goal >= +2)")
    return summary


if __name__ == "__main__":
    main()
