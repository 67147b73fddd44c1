"""Lava CPU simulation vs the bit-accurate torch emulation of the same fixed-point network.

Network: 784-256-10, LIF (tau=2) hidden and output layers, Poisson input spikes (rate 0.2), quantized with
:func:`snn.export.loihi.quantize`. Lava runs ``--lava-samples`` samples one at a time (its usual use:
one network per run) under ``Loihi2SimCfg(select_tag='fixed_pt')``; the emulation runs ``--batch`` samples at
once. Throughput is in sample-steps per second (one sample advanced one time step). The emulation is checked
spike for spike against Lava on the Lava samples.

    python benchmarks/lava_emulation.py [--T 100] [--batch 1024] [--lava-samples 2] [--device cpu|cuda]
        [--threads N] [--json PATH]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
import torch.nn as nn

from snn.export.loihi import emulate_fixed, lower, quantize
from snn.io import atomic_write_json
from snn.neuron import LIF


def network(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    l1, l2 = nn.Linear(784, 256), nn.Linear(256, 10)
    with torch.no_grad():
        l1.weight.copy_(torch.randn(256, 784, generator=g) * 0.15)
        l1.bias.zero_()
        l2.weight.copy_(torch.randn(10, 256, generator=g) * 0.3)
        l2.bias.zero_()
    return quantize(lower(nn.Sequential(l1, LIF(tau=2.0), l2, LIF(tau=2.0)), (784,)))


def inputs(T: int, B: int, seed: int = 1):
    return (torch.rand(T, B, 784, generator=torch.Generator().manual_seed(seed)) < 0.2).float()


def time_emulation(net, x, device: str, repeats: int = 3) -> float:
    x = x.to(device)
    emulate_fixed(net, x[:2])                      # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        emulate_fixed(net, x)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lava-samples", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-lava", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    net = network()
    x = inputs(args.T, args.batch)
    res = {"network": "784-256-10 LIF, fixed point", "T": args.T, "batch": args.batch, "device": args.device,
           "machine": machine()}
    t_emu = time_emulation(net, x, args.device)
    res["emulation_s"] = t_emu
    res["emulation_sample_steps_per_s"] = args.T * args.batch / t_emu
    if not args.no_lava:
        from snn.export.lava import run_lava

        xl = x[:, :args.lava_samples]
        t0 = time.perf_counter()
        lava_out = run_lava(net, xl, batch_size=1)
        t_lava = time.perf_counter() - t0
        steps = (args.T + len(net.layers)) * args.lava_samples   # Lava also runs the pipeline-fill steps
        res.update(lava_s=t_lava, lava_samples=args.lava_samples,
                   lava_sample_steps_per_s=steps / t_lava,
                   bit_exact=bool(torch.equal(lava_out, emulate_fixed(net, xl).float())),
                   output_spikes_checked=int(lava_out.sum()))
        res["speedup"] = res["emulation_sample_steps_per_s"] / res["lava_sample_steps_per_s"]
    for k, v in res.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    if args.json:
        atomic_write_json(args.json, res)
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
