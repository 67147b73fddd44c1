"""``snn lsm``: linear probe of a liquid state machine on event data, and ``snn lsm zeroshot``.

    snn lsm --dataset event-fmnist --neurons 1000 --device-model rram --readout ridge --samples 2000 \\
            --json out.json --out plots/
    snn lsm zeroshot --task words --neurons 500 --json zs.json      # spoken words <-> phonemes
    snn lsm zeroshot --task digits --neurons 500 --json zs.json     # event digits <-> spoken digits
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..cli import positive_int, refuse_to_overwrite, seed
from .device import DEVICE_MODELS, make_device_model
from .probe import PRESETS, SENSOR_SHAPES, linear_probe, load_event_split
from .readout import READOUTS
from .reservoir import FEATURES

__all__ = ["register"]


# The plots `snn lsm --out DIR` writes; a new run refuses a DIR holding any of them unless --overwrite.
PROBE_RESULTS = ("raster_N*.png", "accuracy_vs_size.png")


def _unseen(text: str) -> int:
    v = positive_int(text)
    if not 2 <= v <= 9:
        raise argparse.ArgumentTypeError(f"must be between 2 and 9 (of the 10 classes, at least one seen and "
                                         f"a choice among two or more unseen), got {v}")
    return v


def register(subparsers) -> None:
    from ..cli import add_json_option, declare_output

    p = subparsers.add_parser("lsm", help="liquid state machine on event data (linear probe; 'zeroshot' demo)",
                              description="Linear probe of a liquid state machine on event data against the same "
                                          "readout on the raw binned events.")
    p.add_argument("--dataset", choices=tuple(SENSOR_SHAPES), default="event-digits")
    p.add_argument("--neurons", type=positive_int, nargs="+", default=[500],
                   help="reservoir size(s) N; several give an accuracy-vs-size plot")
    p.add_argument("--device-model", choices=DEVICE_MODELS, default="none",
                   help="'rram': weights realised by the resistive-memory model at its default noise")
    p.add_argument("--readout", choices=READOUTS, default="ridge")
    p.add_argument("--preset", choices=tuple(PRESETS), default="vision",
                   help="reservoir settings: 'vision' (dense smooth random input fields, the default) or "
                        "'retinotopic' (sparse local fields)")
    p.add_argument("--samples", type=positive_int, default=1000, help="training samples (test: a quarter)")
    p.add_argument("--bins", type=positive_int, default=3, help="time bins of the features")
    p.add_argument("--features", choices=FEATURES, default="all",
                   help="'all' (default): spike counts, traces and the membrane potential at each bin's end; "
                        "'both': counts and traces")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write a raster and accuracy-vs-size plot here (refused if it holds such plots already, "
                        "unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace the plots in --out")
    declare_output(p, "out", "dir")
    add_json_option(p)
    p.set_defaults(func=run_probe)
    sub = p.add_subparsers(dest="lsm_command", metavar="{zeroshot}")
    z = sub.add_parser("zeroshot", help="zero-shot recognition of unseen classes (spoken words via phonemes, "
                                        "or visual/spoken digit matching)")
    z.add_argument("--task", choices=("words", "digits"), default="words",
                   help="'words': spoken digit names never heard in training, recognised from their espeak-ng "
                        "phoneme transcriptions; 'digits': event digits vs spoken digits (the paper's set-up)")
    z.add_argument("--neurons", type=positive_int, default=500, help="neurons per modality reservoir")
    z.add_argument("--unseen", type=_unseen, default=3, help="number of unseen classes")
    z.add_argument("--splits", type=positive_int, default=5, help="random class splits averaged")
    z.add_argument("--epochs", type=positive_int, default=300, help="projection-head training steps ('digits')")
    z.add_argument("--device-model", choices=DEVICE_MODELS, default="none")
    z.add_argument("--seed", type=seed, default=0)
    z.add_argument("--threads", type=positive_int, default=1)
    add_json_option(z)
    z.set_defaults(func=run_zeroshot_cmd)


def run_probe(args) -> dict:
    if args.out and not args.overwrite:
        refuse_to_overwrite(args.out, PROBE_RESULTS)
    torch.set_num_threads(args.threads)
    n_test = max(1, args.samples // 4)
    data = load_event_split(args.dataset, args.samples, n_test, args.seed)
    rows = []
    raw = None
    for n in args.neurons:
        r = linear_probe(data, n, dataset=args.dataset, readout=args.readout,
                         device_model=make_device_model(args.device_model), n_bins=args.bins, seed=args.seed,
                         raw_predictions=raw, keep_lsm=args.out is not None, preset=args.preset,
                         features=args.features)
        raw = r.pop("raw_predictions")
        lsm = r.pop("lsm", None)
        if args.out:
            _, spikes = lsm.run(data[2][:, :1], record=True)
            r["raster"] = str(_plots().raster(spikes[:, 0], Path(args.out) / f"raster_N{n}.png",
                                              title=f"LSM N={n}, {args.dataset} test sample 0"))
        rows.append(r)
        print(f"  N={n}: LSM {100 * r['lsm_accuracy']:.1f}% vs raw {100 * r['raw_accuracy']:.1f}% "
              f"({r['simulate_s']:.1f} s simulated)")
    summary = dict(rows[-1]) if len(rows) == 1 else dict(dataset=args.dataset, runs=rows)
    if args.out:
        summary["accuracy_plot"] = str(_plots().accuracy_vs_size(rows, Path(args.out) / "accuracy_vs_size.png"))
    return summary


def run_zeroshot_cmd(args) -> dict:
    from .zeroshot import run_zeroshot, run_zeroshot_words

    torch.set_num_threads(args.threads)
    if args.task == "words":
        r = run_zeroshot_words(n_neurons=args.neurons, n_unseen=args.unseen, n_splits=args.splits, seed=args.seed,
                               device_model=make_device_model(args.device_model))
        for name in ("lsm", "raw"):
            for setting, v in r[name].items():
                if isinstance(v, dict):
                    print(f"  {name:3s} {setting:10s}: 10-way {100 * v['ten_way']:.1f}% (chance 10%), "
                          f"{args.unseen}-way splits {100 * v['splits_mean']:.1f}% +- {100 * v['splits_std']:.1f} "
                          f"(chance {100 * v['splits_chance']:.1f}%)")
        return r
    return run_zeroshot(n_neurons=args.neurons, n_unseen=args.unseen, n_splits=args.splits, epochs=args.epochs,
                        seed=args.seed, device_model=make_device_model(args.device_model))


def _plots():
    from . import plots

    return plots
