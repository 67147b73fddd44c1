"""Zoo models against the csnn preset on an offline stand-in data set, trained the same way with snn.train.fit.

    python benchmarks/zoo_standin.py --dataset event-fmnist --models csnn,vgg11 --width 0.125 \
        --n-train 2000 --n-test 1000 --n-frames 10 --epochs 4 --threads 1 --json runs/zoo.json

Every model sees the same samples, frames, batch order (seed), optimizer, learning rate and epochs; ``--width``
scales the channels of the zoo models (the csnn preset keeps its own 32/64). Prints one line per model (test
accuracy after the last epoch, the best epoch's, seconds per epoch, parameters) and writes them with
``--json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from snn import data, models
from snn.io import atomic_write_json
from snn.train import fit

PRESET_ARGS = {"csnn": {}, "mlp": {}}


def model_args(name: str, width: float, size, arch: dict) -> dict:
    """The builder arguments of ``name`` for inputs of spatial ``size`` (``arch``: more for the zoo models)."""
    if name in PRESET_ARGS:
        return dict(in_shape=list(size), **PRESET_ARGS[name])
    if name == "rsnn":
        return dict(arch)
    return dict(width=width, **arch)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="event-fmnist", choices=data.available())
    p.add_argument("--models", default="csnn,vgg11", help="comma-separated registered models")
    p.add_argument("--width", type=float, default=0.125, help="channel multiplier of the zoo models")
    p.add_argument("--neuron", default="lif", choices=models.neuron_names())
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-frames", type=int, default=10)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--schedule", default=None, choices=("cosine",), help="learning-rate schedule (default constant)")
    p.add_argument("--arch", type=json.loads, default={}, help='more zoo-model arguments as JSON, e.g. \'{"pool": 2}\'')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="one line per epoch")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in models.available()]
    if unknown:
        p.error(f"--models: unknown {unknown}; available: {models.available()}")
    torch.set_num_threads(args.threads)

    options = dict(n_frames=args.n_frames) if args.dataset.startswith("event-") else {}
    train = data.get_dataset(args.dataset, split="train", n=args.n_train, seed=args.seed, **options)
    test = data.get_dataset(args.dataset, split="test", n=args.n_test, seed=args.seed, **options)
    step = tuple(train.input_shape)
    rows = []
    for name in names:
        torch.manual_seed(args.seed)
        net = models.get(name, num_classes=train.num_classes, in_channels=step[0], neuron=args.neuron,
                         T=args.n_frames, **model_args(name, args.width, step[1:], args.arch))
        t0 = time.perf_counter()
        r = fit(net, train, test, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                schedule=args.schedule, progress=False, log=print if args.verbose else None)
        rows.append(dict(model=name, config=models.model_config(net), test_acc=r.val_acc, best_test_acc=r.best_val_acc,
                         seconds_per_epoch=r.seconds_per_epoch, wall_seconds=time.perf_counter() - t0,
                         parameters=r.parameters, firing_rate=r.firing_rate, history=r.history))
        print(f"{name:18s} test acc {100 * r.val_acc:5.1f} % (best {100 * r.best_val_acc:5.1f} %)  "
              f"{r.seconds_per_epoch:6.1f} s/epoch  {r.parameters:,} parameters", flush=True)
    summary = dict(dataset=args.dataset, n_train=len(train), n_test=len(test), n_frames=args.n_frames,
                   epochs=args.epochs, lr=args.lr, schedule=args.schedule, batch_size=args.batch_size, seed=args.seed,
                   threads=args.threads,
                   neuron=args.neuron, width=args.width, argv=sys.argv[1:] if argv is None else list(argv), runs=rows)
    if args.json:
        atomic_write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
