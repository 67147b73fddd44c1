"""``snn bench ...`` sub-commands. ``snn bench kernels`` runs :func:`snn.bench.kernels.run`."""
from __future__ import annotations

import argparse

from .kernels import DEFAULT_N, DEFAULT_T


def register(subparsers) -> None:
    from ..cli import add_json_option, declare_output, positive_int

    bench = subparsers.add_parser("bench", help="benchmarks (see benchmarks/RESULTS.md)")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH")
    k = sub.add_parser("kernels", help="multi-step LIF throughput of snn's kernels vs SpikingJelly, snnTorch, Norse "
                                       "and the copy roofline",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    k.add_argument("--T", type=positive_int, nargs="+", default=list(DEFAULT_T), metavar="T", help="time steps")
    k.add_argument("--N", type=positive_int, nargs="+", default=list(DEFAULT_N), metavar="N", help="neurons")
    k.add_argument("--threads", type=positive_int, default=2, help="torch/OpenMP threads (CPU)")
    k.add_argument("--repeat", type=positive_int, default=5, help="timed runs per case (the best is kept)")
    k.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if visible, else cpu")
    k.add_argument("--no-peers", action="store_true", help="only snn's backends and the copy roofline")
    k.add_argument("--png", metavar="PATH", default=None, help="also draw throughput vs the roofline here")
    declare_output(k, "png", "file")
    add_json_option(k)
    k.set_defaults(func=_kernels)
    bench.set_defaults(func=lambda args: (bench.print_help(), None)[1])


def _kernels(args) -> dict:
    from .kernels import format_table, run

    result = run(args.T, args.N, args.threads, args.json, args.png, repeat=args.repeat, device=args.device,
                 include_peers=not args.no_peers)
    print(format_table(result))
    summary = {"device": result["device"], "threads": result["threads"], "malloc_tuned": result["malloc_tuned"],
               "sizes": len(args.T) * len(args.N)}
    for key, g in result["goals"].items():
        for name in ("fwd_x_copy", "fwd_bwd_x_copy", "fwd_bwd_speedup_vs_best_peer"):
            if g.get(name) is not None:
                summary[f"{key} {name}"] = g[name]
    summary["goals"] = result["goals"]
    if args.png:
        summary["png"] = args.png
    return summary
