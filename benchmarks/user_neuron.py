"""A user's neuron (examples/user_neuron.py: a spec written outside snn's sources), its C++ step compiled on first
use (backend='cpp') against its torch reference (backend='torch'): forward and forward+backward times.

    .venv/bin/python benchmarks/user_neuron.py                          # T=16, N=2^20, 2 threads
    .venv/bin/python benchmarks/user_neuron.py --T 8 --N 65536 --repeat 3   # a quick run

The two backends run in the same process, alternating call by call, so the ratio holds on a busy machine even
where the times do not. Writes benchmarks/results/user_neuron.json unless told otherwise (--json PATH).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from snn import surrogate as sg  # noqa: E402
from snn.checks import check_int  # noqa: E402
from snn.io import atomic_write_json  # noqa: E402

BACKENDS = ("torch", "cpp")


def load_example():
    """The example's module (its spec registers on import)."""
    path = os.path.join(ROOT, "examples", "user_neuron.py")
    spec = importlib.util.spec_from_file_location("user_neuron_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(T: int, N: int, repeat: int) -> dict:
    """Median seconds per call of each backend, forward (no gradient) and forward+backward, alternating."""
    from snn import ops
    spec = load_example().MY_LIF
    params, flags = spec.kernel(spec.validate({}, spec.name))
    x = torch.rand(T, N, generator=torch.Generator().manual_seed(0)) * 0.3
    grad = torch.rand(T, N, generator=torch.Generator().manual_seed(1))

    def forward(backend):
        with torch.no_grad():
            ops.run(spec, x, (0.0,), params, flags, surrogate=sg.ATan(), backend=backend)

    def forward_backward(backend):
        xg = x.detach().requires_grad_()
        s, _, _ = ops.run(spec, xg, (0.0,), params, flags, surrogate=sg.ATan(), backend=backend)
        s.backward(grad)

    for backend in BACKENDS:  # compile (or load from the cache) and warm up
        forward(backend)
        forward_backward(backend)
    times = {(b, k): [] for b in BACKENDS for k in ("fwd", "fwd+bwd")}
    for _ in range(repeat):
        for backend in BACKENDS:
            times[backend, "fwd"].append(timed(lambda: forward(backend)))
            times[backend, "fwd+bwd"].append(timed(lambda: forward_backward(backend)))
    med = {f"{b} {k}": statistics.median(v) for (b, k), v in times.items()}
    return {"T": T, "N": N, "repeat": repeat, "median_s": med,
            "speedup": {k: med[f"torch {k}"] / med[f"cpp {k}"] for k in ("fwd", "fwd+bwd")}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--N", type=int, default=2 ** 20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=os.path.join(HERE, "results", "user_neuron.json"))
    a = p.parse_args(argv)
    for name in ("T", "N", "threads", "repeat"):
        try:
            check_int(getattr(a, name), f"--{name}", "user_neuron", low=1)
        except ValueError as e:
            p.error(str(e))
    torch.set_num_threads(a.threads)
    result = measure(a.T, a.N, a.repeat)
    result.update(threads=a.threads, torch=torch.__version__, cpu=platform.processor() or platform.machine())
    for k in ("fwd", "fwd+bwd"):
        print(f"{k:8s} torch {result['median_s'][f'torch {k}'] * 1e3:9.2f} ms   cpp "
              f"{result['median_s'][f'cpp {k}'] * 1e3:8.2f} ms   cpp {result['speedup'][k]:.1f}x faster")
    atomic_write_json(a.json, result)
    print(f"T={a.T}, N={a.N}, {a.threads} threads, median of {a.repeat}; json: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
