"""SPIDE vs BPTT on the same feedback network: test accuracy, seconds per epoch, peak training memory as T
grows, firing sparsity of both phases; and the gradient error of SPIDE against IDE as T_back grows (PNG).

    .venv/bin/python benchmarks/spide.py --datasets digits,fashion-mnist,event-fmnist --Ts 10,30,100 \\
        --epochs 2 --train-limit 5000 --json benchmarks/results/spide.json --png benchmarks/results/spide_grad.png

Both methods train the same network from the same initial weights with Adam, the same T, batches and
epochs; BPTT backpropagates surrogate gradients (atan) through the T steps of the same modified-reset
neurons, SPIDE runs the spiking backward phase of ``--T-back`` steps. Peak memory is
:class:`snn.train.memory.PeakMemory`: on CPU the bytes autograd saves for the backward pass, on CUDA the
allocator's peak. Event data (``event-fmnist``) bring their own T (their frames).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from snn.data import get_dataset, load
from snn.io import atomic_write_json
from snn.spide.convergence import gradient_error, plot_gradient_error
from snn.spide.models import spide_conv, spide_fc, spide_mlp
from snn.spide.train import time_major, train

BUILDERS = {"fc": lambda shape, a: spide_fc(shape, a.hidden[0], leak=a.leak, T_back=a.T_back),
            "mlp": lambda shape, a: spide_mlp(shape, a.hidden, leak=a.leak, T_back=a.T_back),
            "conv": lambda shape, a: spide_conv(shape, a.channels, leak=a.leak, T_back=a.T_back)}


def data(name: str, args):
    """``(train, test, in_shape, sequence)`` with the first ``--train-limit`` / ``--test-limit`` samples."""
    if name in ("digits", "fashion-mnist"):
        (x, y), (xt, yt) = load(name, "train"), load(name, "test")
        return ((x[:args.train_limit], y[:args.train_limit]), (xt[:args.test_limit], yt[:args.test_limit]),
                tuple(x.shape[1:]), False)
    sets = [get_dataset(name, split=s, n=n) for s, n in (("train", args.train_limit), ("test", args.test_limit))]
    pairs = [(ds.x.transpose(0, 1), ds.targets) for ds in sets]  # [N, T, ...] as stored (uint8 counts)
    return pairs[0], pairs[1], tuple(sets[0].input_shape), True


def run(name, grad, T, args, split) -> dict:
    train_set, test_set, shape, sequence = split
    torch.manual_seed(args.seed)
    model = BUILDERS[args.model](shape, args)
    h = train(model, train_set, test_set, grad=grad, T=T, epochs=args.epochs, lr=args.lr,
              batch_size=args.batch_size, seed=args.seed, sequence=sequence,
              log=lambda line: print(f"[{name} T={T}] {line}", flush=True))
    row = {"dataset": name, "grad": grad, "T": T, "T_back": args.T_back if grad == "spide" else None,
           "test_acc": h["test_acc"][-1], "seconds_per_epoch": sum(h["epoch_s"]) / len(h["epoch_s"]),
           "peak_memory_mb": max(h["peak_mb"]), "forward_rate": h["forward_rate"][-1],
           "backward_rate": h["backward_rate"][-1], "history": h, "train_samples": len(train_set[1]),
           "test_samples": len(test_set[1])}
    print({k: v for k, v in row.items() if k != "history"}, flush=True)
    return row, model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits,fashion-mnist,event-fmnist")
    p.add_argument("--Ts", default="10,30,100", help="time steps of the static data sets")
    p.add_argument("--grads", default="spide,bptt")
    p.add_argument("--model", default="fc", choices=sorted(BUILDERS))
    p.add_argument("--hidden", default="256", help="layer widths of fc/mlp")
    p.add_argument("--channels", default="16,32", help="conv channels")
    p.add_argument("--leak", type=float, default=1.0, help="1: IF; < 1: LIF")
    p.add_argument("--T-back", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=5000)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--grad-T-backs", default="10,20,50,100,250,500")
    p.add_argument("--json", default=None)
    p.add_argument("--png", default=None, help="gradient error vs T_back plot")
    args = p.parse_args(argv)
    args.hidden = [int(h) for h in args.hidden.split(",")]
    args.channels = [int(c) for c in args.channels.split(",")]
    torch.set_num_threads(args.threads)
    res = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                       "torch": torch.__version__, "load_average_start": os.getloadavg()},
           "config": vars(args), "runs": [], "gradient_error": {}}

    def save():
        if args.json:
            atomic_write_json(args.json, res)

    T_backs = [int(t) for t in args.grad_T_backs.split(",") if t]
    for name in [d for d in args.datasets.split(",") if d]:
        start = time.perf_counter()
        split = data(name, args)
        print(f"{name}: {len(split[0][1])} train / {len(split[1][1])} test samples loaded in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        Ts = [split[0][0].shape[1]] if split[3] else [int(t) for t in args.Ts.split(",") if t]
        for T in Ts:
            for grad in [g for g in args.grads.split(",") if g]:
                row, model = run(name, grad, T, args, split)
                res["runs"].append(row)
                save()
            if T_backs and name not in res["gradient_error"]:  # at the last trained network's equilibrium
                x, y = split[1][0][:args.batch_size], split[1][1][:args.batch_size]
                res["gradient_error"][name] = {**gradient_error(model, time_major(x, T, split[3]), y, T_backs),
                                               "T": T, "network_trained_by": row["grad"]}
                print(f"[{name}] SPIDE vs IDE gradient: {res['gradient_error'][name]}", flush=True)
                save()
    res["machine"]["load_average_end"] = os.getloadavg()
    save()
    if args.png and res["gradient_error"]:
        plot_gradient_error(res["gradient_error"], args.png,
                            title=f"SPIDE gradient vs IDE ({args.model}, trained networks, batch {args.batch_size})")
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
