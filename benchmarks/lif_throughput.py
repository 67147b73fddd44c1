"""Multi-step LIF throughput: snn (cpp / torch, or cuda / triton on a GPU) vs SpikingJelly 2.0,
snnTorch, Norse and the copy roofline. A thin script over :func:`snn.bench.kernels.run`
(the same as ``snn bench kernels``).

    .venv/bin/python benchmarks/lif_throughput.py                       # T = 4, 16, 64; N = 65,536, 1,048,576
    .venv/bin/python benchmarks/lif_throughput.py --T 4 --N 65536 --repeat 2   # a quick run

Writes benchmarks/results/lif_throughput.json and .png unless told otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from snn.bench.kernels import DEFAULT_N, DEFAULT_T, format_table, run  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, nargs="+", default=list(DEFAULT_T))
    p.add_argument("--N", type=int, nargs="+", default=list(DEFAULT_N))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--json", default=os.path.join(HERE, "results", "lif_throughput.json"))
    p.add_argument("--png", default=os.path.join(HERE, "results", "lif_throughput.png"))
    a = p.parse_args(argv)
    result = run(a.T, a.N, a.threads, a.json, a.png, repeat=a.repeat, device=a.device, include_peers=not a.no_peers)
    print(format_table(result))
    for key, g in result["goals"].items():
        print(f"goals {key}: {g}")
    print(f"json: {a.json}\npng: {a.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
