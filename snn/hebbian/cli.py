"""``snn hebbian``: SoftHebb layers trained without backprop, and neuro-modulated Hebbian test-time adaptation.

    snn hebbian train --dataset fashion-mnist --channels 32 --n-train 10000 --fields fields.png --json out.json
    snn hebbian train --spiking --T 8 --neuron if ...           # the same blocks with spiking neurons
    snn hebbian adapt --corruption noise contrast rotation --methods none norm tent nhl --json tta.json
"""
from __future__ import annotations

import argparse

import torch

from ..cli import existing_dir, nonnegative_float, positive_float, positive_int, seed
from ..data import DATASETS
from .corrupt import CORRUPTIONS
from .experiment import BASELINES, run_adaptation, run_softhebb
from .net import ENCODINGS
from .tta import METHODS

__all__ = ["register"]


def positive_floats(text: str) -> list[float]:
    """A ``type=`` for comma (or space) separated finite numbers > 0, at least one."""
    values = [positive_float(v) for v in text.replace(",", " ").split()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", type=existing_dir, default=None, help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--n-train", type=positive_int, default=10000, help="training images (a random subset)")
    p.add_argument("--n-test", type=positive_int, default=5000, help="test images (the first ones)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers) -> None:
    from ..cli import add_json_option, declare_output, int_list

    p = subparsers.add_parser("hebbian", help="SoftHebb (Hebbian layers, no backprop) and NHL test-time adaptation",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="hebbian_command", metavar="{train,adapt}")
    p.set_defaults(func=lambda args: (p.print_help(), None)[1])

    t = sub.add_parser("train", help="train SoftHebb blocks layer by layer, then a linear probe; compare with "
                                     "random frozen weights and backprop",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(t)
    t.add_argument("--channels", type=int_list(1), default=[32], help="kernels per block, e.g. 32,128")
    t.add_argument("--kernels", type=int_list(1), default=[5], help="kernel size per block (or one for all)")
    t.add_argument("--temperatures", type=positive_floats, default=[1.0], help="soft-WTA temperature per block")
    t.add_argument("--powers", type=positive_floats, default=[0.7], help="triangle power per block")
    t.add_argument("--lrs", type=positive_floats, default=[0.08], help="Hebbian learning rate per block")
    t.add_argument("--hebbian-epochs", type=positive_int, default=1)
    t.add_argument("--hebbian-batch-size", type=positive_int, default=16)
    t.add_argument("--probe-epochs", type=positive_int, default=10)
    t.add_argument("--baselines", nargs="*", choices=BASELINES, default=list(BASELINES),
                   help="also probe random frozen weights / train the same network by backprop")
    t.add_argument("--backprop-epochs", type=positive_int, default=1)
    t.add_argument("--spiking", action="store_true", help="spiking blocks: neurons driven by the triangle")
    t.add_argument("--T", type=positive_int, default=8, help="time steps (spiking)")
    t.add_argument("--neuron", default="if", help="registered neuron for --spiking (snn.neurons.names())")
    t.add_argument("--v-threshold", type=positive_float, default=1.0, help="firing threshold (spiking)")
    t.add_argument("--encoding", choices=ENCODINGS, default="direct", help="input encoding (spiking)")
    t.add_argument("--fields", metavar="PATH", default=None, help="write the first layer's receptive fields (PNG)")
    declare_output(t, "fields", "file")
    add_json_option(t)
    t.set_defaults(func=train_command)

    a = sub.add_parser("adapt", help="test-time adaptation under a corruption: none, norm, Tent, NHL",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(a)
    a.add_argument("--corruption", nargs="+", choices=CORRUPTIONS, default=list(CORRUPTIONS))
    a.add_argument("--severity", type=nonnegative_float, default=None,
                   help="corruption strength (noise σ, contrast factor, rotation degrees); default per corruption")
    a.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    a.add_argument("--hebbian-channels", type=positive_int, default=32)
    a.add_argument("--source-epochs", type=positive_int, default=2, help="backprop epochs of the source model's top")
    a.add_argument("--hebbian-lr", type=positive_float, default=0.1, help="NHL: test-time Hebbian rate")
    a.add_argument("--modulator-lr", type=positive_float, default=1e-3, help="NHL: neuro-modulator's Adam rate")
    a.add_argument("--tent-lr", type=positive_float, default=1e-3, help="Tent: Adam rate")
    a.add_argument("--batch-size", type=positive_int, default=128, help="test batch size (the stream's step)")
    add_json_option(a)
    a.set_defaults(func=adapt_command)


def _threads(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


def train_command(args) -> dict:
    from .net import neuron_class

    if args.spiking:
        neuron_class(args.neuron)  # an unknown neuron is an error before any training
    _threads(args)
    r = run_softhebb(args.dataset, args.n_train, args.n_test, args.channels, args.kernels, args.temperatures,
                     args.powers, args.lrs, args.T if args.spiking else None, args.neuron, args.v_threshold,
                     args.encoding, args.hebbian_epochs, args.hebbian_batch_size, args.probe_epochs,
                     args.baselines, args.backprop_epochs, args.seed, args.data_dir, not args.quiet, args.fields)
    line = f"  SoftHebb + linear probe {100 * r['softhebb']['accuracy']:.2f}%"
    for b in BASELINES:
        if b in r:
            line += f", {b} {100 * r[b]['accuracy']:.2f}%"
    print(line)
    summary = {"softhebb_accuracy": r["softhebb"]["accuracy"], "hebbian_s_per_epoch": r["hebbian_s_per_epoch"]}
    summary.update({f"{b}_accuracy": r[b]["accuracy"] for b in BASELINES if b in r})
    return {**summary, **r}


def adapt_command(args) -> dict:
    _threads(args)
    severities = None if args.severity is None else {c: args.severity for c in args.corruption}
    r = run_adaptation(args.dataset, args.n_train, args.n_test, args.corruption, severities, args.methods,
                       args.hebbian_channels, args.source_epochs, args.hebbian_lr, args.modulator_lr, args.tent_lr,
                       args.batch_size, args.seed, args.data_dir, not args.quiet)
    print(f"  clean (no adaptation) {100 * r['clean']:.2f}%")
    summary = {"clean_accuracy": r["clean"]}
    for kind, row in r["corruptions"].items():
        print(f"  {kind} ({row['severity']:g}): " + ", ".join(f"{m} {100 * row[m]:.2f}%" for m in args.methods))
        summary.update({f"{kind}_{m}": row[m] for m in args.methods})
    return {**summary, **r}
