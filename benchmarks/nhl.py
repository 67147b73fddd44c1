"""Test-time adaptation on corrupted Fashion-MNIST: NHL vs no adaptation vs Tent (and test-batch normalisation
statistics alone, the part NHL and Tent share).

Per seed: a source model (a SoftHebb convolutional block, the neuro-modulator, a backprop-trained top) learns on a
random subset of the clean training split; each corrupted test set (noise, contrast, rotation) is then streamed
once, in batches, through every adapter, each starting from the source model. Reports the mean and standard
deviation over the seeds and writes the JSON to ``benchmarks/results/``.

    .venv/bin/python benchmarks/nhl.py                          # 3 seeds, 10k train / 5k test
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softhebb import mean_sd  # noqa: E402

from snn.hebbian.corrupt import CORRUPTIONS  # noqa: E402
from snn.hebbian.experiment import run_adaptation  # noqa: E402
from snn.hebbian.tta import METHODS  # noqa: E402
from snn.io import atomic_write_json  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--test", type=int, default=5000)
    p.add_argument("--severities", default="{}", help='JSON, e.g. {"noise": 0.5} (default per corruption)')
    p.add_argument("--hebbian-channels", type=int, default=32)
    p.add_argument("--source-epochs", type=int, default=2)
    p.add_argument("--hebbian-lr", type=float, default=0.1)
    p.add_argument("--modulator-lr", type=float, default=1e-3)
    p.add_argument("--tent-lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tag", default="nhl")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:
        r = run_adaptation("fashion-mnist", args.train, args.test, severities=json.loads(args.severities),
                           hebbian_channels=args.hebbian_channels, source_epochs=args.source_epochs,
                           hebbian_lr=args.hebbian_lr, modulator_lr=args.modulator_lr, tent_lr=args.tent_lr,
                           batch_size=args.batch_size, seed=seed)
        runs.append(r)
        print(f"seed {seed}: clean {100 * r['clean']:.2f}%", flush=True)
        for kind, row in r["corruptions"].items():
            print(f"  {kind:8s} ({row['severity']:g}): " + "  ".join(f"{m} {100 * row[m]:.2f}%" for m in METHODS),
                  flush=True)
    table = {}
    for kind in CORRUPTIONS:
        row = {m: mean_sd(r["corruptions"][kind][m] for r in runs) for m in METHODS}
        row["severity"] = runs[0]["corruptions"][kind]["severity"]
        for m in ("nhl", "tent", "norm"):
            row[f"{m}_minus_none_points"] = mean_sd(100 * (r["corruptions"][kind][m] - r["corruptions"][kind]["none"])
                                                    for r in runs)
        row["nhl_minus_tent_points"] = mean_sd(100 * (r["corruptions"][kind]["nhl"] - r["corruptions"][kind]["tent"])
                                               for r in runs)
        row["s_per_stream"] = {m: mean_sd(r["corruptions"][kind][f"{m}_s"] for r in runs) for m in METHODS}
        table[kind] = row
    summary = {"settings": vars(args), "machine": platform.processor() or platform.machine(),
               "threads": args.threads, "wall_s": time.perf_counter() - start,
               "clean": mean_sd(r["clean"] for r in runs), "corruptions": table, "runs": runs}
    atomic_write_json(ROOT / "benchmarks" / "results" / f"{args.tag}.json", summary)
    print(f"mean of {len(runs)} seeds, clean {100 * summary['clean']['mean']:.2f}%:")
    for kind, row in table.items():
        d = row["nhl_minus_none_points"]
        print(f"  {kind:8s}: " + "  ".join(f"{m} {100 * row[m]['mean']:.2f}" for m in METHODS)
              + f"   NHL - none {d['mean']:+.2f} +- {d['sd']:.2f} points (goal >= +2)")
    return summary


if __name__ == "__main__":
    main()
