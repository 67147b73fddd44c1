"""``snn export`` and ``snn deploy``.

- ``snn export --to lava|nir --checkpoint PATH --out PATH``: lower (and, for Lava, quantize unless
  ``--mode float``) a trained network and write it atomically: the Lava parameters as a torch file
  (:func:`snn.export.lava.load_lowered` reads it back), or an NIR graph (HDF5).
- ``snn deploy --checkpoint PATH --mode fixed|float --samples N``: run N test samples through the snn network,
  the torch emulation and Lava's simulator; report the accuracy of each and their agreement.
"""
from __future__ import annotations

import time

import torch

__all__ = ["register", "load_deployable", "encode_inputs"]


def _add_common(p) -> None:
    from ..cli import add_json_option, existing_file

    p.add_argument("--checkpoint", required=True, type=existing_file, metavar="PATH",
                   help="a checkpoint written by `snn train`")
    p.add_argument("--clip", action="store_true",
                   help="clip values outside Loihi's ranges (counted) instead of failing")
    add_json_option(p)


def register(subparsers) -> None:
    from ..cli import declare_output, existing_dir, positive_int

    p = subparsers.add_parser("export", help="export a trained network to Lava or NIR")
    p.add_argument("--to", required=True, choices=("lava", "nir"))
    p.add_argument("--out", required=True, metavar="PATH", help="the file to write (replaced if it exists)")
    p.add_argument("--mode", choices=("fixed", "float"), default="fixed", help="Lava: fixed point (default) or float")
    _add_common(p)
    declare_output(p, "out", "file")
    p.set_defaults(func=export_command)

    p = subparsers.add_parser("deploy", help="run test samples in Lava's simulator and the torch emulation")
    p.add_argument("--mode", choices=("fixed", "float"), default="fixed")
    p.add_argument("--samples", type=positive_int, default=32)
    p.add_argument("--batch-size", type=positive_int, default=16, help="samples per Lava run")
    p.add_argument("--no-lava", action="store_true", help="only the torch emulation")
    p.add_argument("--dataset", choices=("fashion-mnist", "digits"), default=None,
                   help="default: the data set the checkpoint was trained on; another one is an error")
    p.add_argument("--data-dir", type=existing_dir, default=None)
    _add_common(p)
    p.set_defaults(func=deploy_command)


def load_deployable(path):
    """``(model, in_shape, train_config)`` from a checkpoint (``snn.train.load_model`` plus its configs);
    ``train_config["dataset"]`` is the data set the run trained on (``auto`` resolved, when recorded)."""
    from ..train import load_checkpoint, load_model
    from ..train.checkpoint import MODEL_KEYS

    ckpt = load_checkpoint(path, require=MODEL_KEYS)
    model = load_model(path)
    in_shape = tuple(ckpt["model_config"].get("in_shape", (1, 28, 28)))
    cfg = dict(ckpt.get("train_config") or {})
    if ckpt.get("dataset"):
        cfg["dataset"] = ckpt["dataset"]
    return model, in_shape, cfg


def deploy_dataset(path, cfg: dict, asked: str | None) -> str:
    """The data set to deploy on: the checkpoint's. ``asked`` (``--dataset``) must agree with it, and is
    needed only when the checkpoint does not record one."""
    trained = cfg.get("dataset")
    trained = None if trained == "auto" else trained
    if asked and trained and asked != trained:
        raise ValueError(f"--dataset {asked}: checkpoint {path} was trained on {trained}; deploy runs it on that "
                         f"data set (drop --dataset)")
    if not (asked or trained):
        raise ValueError(f"checkpoint {path} does not record which data set it was trained on; give --dataset")
    return asked or trained


def encode_inputs(x: torch.Tensor, cfg: dict, seed: int = 0):
    """``(x_seq [T, B, ...], input_bits)``: direct encoding -> graded 8-bit input, Poisson -> binary spikes."""
    from .. import encoding

    T = int(cfg.get("T", 4))
    if cfg.get("encoding", "direct") == "poisson":
        return encoding.poisson(x, T, generator=torch.Generator().manual_seed(seed)), 0
    return encoding.direct(x, T), 8


def _lowered(model, in_shape, input_bits, mode, clip):
    from .loihi import lower, quantize

    net = lower(model, in_shape, input_bits=input_bits)
    return quantize(net, clip=clip) if mode == "fixed" else net


def export_command(args) -> dict:
    model, in_shape, cfg = load_deployable(args.checkpoint)
    summary = {"to": args.to, "checkpoint": str(args.checkpoint), "out": str(args.out)}
    if args.to == "nir":
        from .nir import to_nir, write_nir

        graph = to_nir(model, in_shape)
        write_nir(graph, args.out)
        summary["nodes"] = len(graph.nodes)
        return summary
    from .lava import save_lowered

    input_bits = 0 if cfg.get("encoding") == "poisson" else 8
    net = _lowered(model, in_shape, input_bits, args.mode, args.clip)
    save_lowered(net, args.out)
    summary.update(mode=args.mode, layers=[L.name for L in net.layers], input_bits=input_bits,
                   clipped=getattr(net, "report", {}).get("n_clipped", 0))
    if args.mode == "fixed":
        summary["fixed_point"] = net.report["layers"]
    return summary


def _predictions(out: torch.Tensor, readout: bool) -> torch.Tensor:
    """Class per sample: argmax of the readout potential, or of the output spike counts."""
    scores = out if readout else out.sum(0)
    return scores.flatten(1).argmax(1)


def _agreement(a: torch.Tensor, b: torch.Tensor, exact: bool = True) -> float:
    """Fraction of equal entries (float readouts: equal to 1e-9 relative)."""
    a, b = a.double(), b.double()
    same = (a == b) if exact else torch.isclose(a, b, rtol=1e-9, atol=1e-9)
    return float(same.double().mean())


def deploy_command(args) -> dict:
    from .. import data, functional
    from .loihi import emulate_fixed, emulate_float

    model, in_shape, cfg = load_deployable(args.checkpoint)
    dataset = deploy_dataset(args.checkpoint, cfg, args.dataset)
    x, y = data.load(dataset, "test", args.data_dir or cfg.get("data_dir"))
    x, y = x[:args.samples], y[:args.samples]
    if tuple(x.shape[1:]) != in_shape:
        raise ValueError(f"--dataset {dataset}: its samples have shape {tuple(x.shape[1:])}, the network of "
                         f"{args.checkpoint} takes {in_shape}")
    x_seq, input_bits = encode_inputs(x, cfg)
    net = _lowered(model, in_shape, input_bits, args.mode, args.clip)

    functional.reset(model)
    with torch.no_grad():
        ref = model(x_seq)
    acc_snn = float((ref.mean(0).argmax(1) == y).float().mean())
    t0 = time.perf_counter()
    emu = emulate_fixed(net, x_seq) if args.mode == "fixed" else emulate_float(net, x_seq)
    t_emu = time.perf_counter() - t0
    summary = {"checkpoint": str(args.checkpoint), "dataset": dataset, "mode": args.mode, "samples": len(y),
               "T": x_seq.shape[0],
               "input_bits": input_bits, "accuracy_snn": acc_snn,
               "accuracy_emulation": float((_predictions(emu, net.readout) == y).float().mean()),
               "emulation_s": t_emu, "clipped": getattr(net, "report", {}).get("n_clipped", 0)}
    if not args.no_lava:
        from .lava import run_lava

        t0 = time.perf_counter()
        lava_out = run_lava(net, x_seq, batch_size=args.batch_size)
        t_lava = time.perf_counter() - t0
        exact = args.mode == "fixed" or not net.readout
        summary.update(accuracy_lava=float((_predictions(lava_out, net.readout) == y).float().mean()),
                       lava_s=t_lava, output_agreement=_agreement(lava_out, emu, exact=exact),
                       prediction_agreement=_agreement(_predictions(lava_out, net.readout),
                                                       _predictions(emu, net.readout)))
        if not net.readout:
            summary["spike_agreement"] = summary["output_agreement"]
    return summary
