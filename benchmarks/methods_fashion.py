"""Training methods side by side: BPTT, DSR and OTTT on Fashion-MNIST with the csnn network (32/64, LIF),
T in {2, 4, 8}: test accuracy, seconds per epoch and peak training memory; then OTTT's and BPTT's peak memory at
T=32 vs T=4.

    .venv/bin/python benchmarks/methods_fashion.py --epochs 1 --train-limit 5000 --json runs/methods.json

Peak memory is the trainer's meter: on CPU, the bytes of the tensors autograd holds for the backward pass
(activations, spikes, weights; see snn.train.memory), on CUDA ``max_memory_allocated``. OTTT runs the csnn
with scaled weight-standardised convolutions instead of BatchNorm, as the method prescribes.
"""
from __future__ import annotations

import argparse
import platform

import torch

from snn.io import atomic_write_json
from snn.train import TrainConfig, Trainer


def run(method: str, T: int, args, epochs: int, train_limit: int | None, test_limit: int | None) -> dict:
    lr = args.lr_ottt if method == "ottt" else args.lr
    cfg = TrainConfig(dataset=args.dataset, model="csnn", channels=[32, 64], neuron="lif", method=method, T=T,
                      epochs=epochs, batch_size=args.batch_size, lr=lr, seed=args.seed, threads=args.threads,
                      data_dir=args.data_dir, train_limit=train_limit, test_limit=test_limit, progress=False)
    s = Trainer(cfg, log=lambda line: print(f"[{method} T={T}] {line}", flush=True)).fit()
    row = {"method": s["method"], "T": T, "test_acc": s["test_acc"], "seconds_per_epoch": s["seconds_per_epoch"],
           "peak_memory_mb": s["peak_memory_mb"], "peak_memory_kind": s["peak_memory_kind"],
           "epochs": s["epochs"], "train_samples": s["train_samples"], "test_samples": s["test_samples"]}
    print(row, flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--methods", default="bptt,dsr,ottt")
    p.add_argument("--Ts", default="2,4,8")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-ottt", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--memory-Ts", default="4,32", help="T values of the memory comparison (a few batches each)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    res = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                       "torch": torch.__version__}, "config": vars(args), "accuracy": [], "memory": []}

    def save():
        if args.json:
            atomic_write_json(args.json, res)

    for T in [int(t) for t in args.memory_Ts.split(",") if t]:
        for method in ("ottt", "bptt"):
            # memory only: a few batches are enough, the meter records the peak of every batch
            res["memory"].append(run(method, T, args, 1, 2 * args.batch_size, 256))
            save()
    for method in args.methods.split(","):
        for T in [int(t) for t in args.Ts.split(",")]:
            res["accuracy"].append(run(method, T, args, args.epochs, args.train_limit, args.test_limit))
            save()
    print("\nmethod   T  test_acc  s/epoch  peak_MB")
    for r in res["accuracy"] + res["memory"]:
        print(f"{r['method']:7} {r['T']:2}  {r['test_acc']:.4f}  {r['seconds_per_epoch']:7.1f}  {r['peak_memory_mb']:8.1f}")


if __name__ == "__main__":
    main()
