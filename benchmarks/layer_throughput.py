"""A spiking layer's throughput and memory: Linear(1024 -> 1024) + LIF, batch 16, T = 500 (the Open Neuromorphic
benchmark's shape), binary input spikes at a given density, side by side in one process.

Contenders (float32, CPU, the same input and gradient for all):

* ``dense Linear``: ``snn.layers.Linear`` alone (``nn.Linear`` over time and batch folded), the yardstick;
* ``snn Linear+LIF``: ``snn.layers.Linear -> snn.neuron.LIF`` (the unfused modules, cpp backend);
* ``snn fused``: ``snn.fused.LinearNeuron`` with its defaults (the dense matmul of ``nn.Linear``, input saved as
  bits, weight gradient from the bits, event-driven where the spikes are below the crossover rate);
* ``snn event Linear`` / ``snn event Linear+LIF``: ``snn.sparse.EventLinear`` alone and ``LinearNeuron`` with
  ``mode='event', grad_mode='event'`` (weight rows accumulated for the input spikes only; weight gradient from
  the packed spikes), at each density;
* ``SpikingJelly Linear+LIF``: ``layer.Linear -> neuron.LIFNode`` (step_mode 'm', its CPU path).

Forward (no gradient) and forward+backward (``∂L/∂x`` and every parameter's gradient) are timed as the best of
``--repeat`` runs after a warm-up (wall and process-CPU ms). Peak memory: the largest total size of the tensors
created during one forward+backward and alive at once (torch's profiler memory timeline; the parameters, which
exist before, are not counted). In that run the layer's input is a fresh copy of the spikes made inside the step
with a gradient path (as the previous layer's output would be), so it counts only while something keeps it: a
layer that saves its input for the backward pays for it, one that keeps bits pays 1/32 of it.

    .venv/bin/python benchmarks/layer_throughput.py                    # the full shape
    .venv/bin/python benchmarks/layer_throughput.py --T 50 --repeat 2  # a quick run

Writes benchmarks/results/layer_throughput.json unless told otherwise.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import snn  # noqa: E402
from snn import layers, neuron  # noqa: E402
from snn.bench.kernels import _best_ms  # noqa: E402
from snn.fused import LinearNeuron  # noqa: E402
from snn.io import atomic_write_json  # noqa: E402
from snn.sparse import EventLinear, kernels  # noqa: E402

TAU = 2.0


def _contenders(features: int, densities) -> dict:
    """name -> (density or None, factory() -> (module, reset))."""
    def snn_module(make):
        return lambda: (make(), snn.reset)

    def unfused():
        return nn.Sequential(layers.Linear(features, features, step_mode="m"), neuron.LIF(tau=TAU, step_mode="m"))

    out = {"dense Linear": (None, snn_module(lambda: layers.Linear(features, features, step_mode="m"))),
           "snn Linear+LIF": (None, snn_module(unfused)),
           "snn fused": (None, snn_module(lambda: LinearNeuron(features, features, neuron.LIF(tau=TAU))))}
    if kernels.available():
        for d in densities:
            out[f"snn event Linear @{d:g}"] = (d, snn_module(lambda: EventLinear(features, features, mode="event",
                                                                                grad_mode="event", step_mode="m")))
            out[f"snn event Linear+LIF @{d:g}"] = (d, snn_module(lambda: LinearNeuron(
                features, features, neuron.LIF(tau=TAU), mode="event", grad_mode="event")))
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import layer as sjl
        from spikingjelly.activation_based import neuron as sjn

        def sj():
            net = nn.Sequential(sjl.Linear(features, features, step_mode="m"),
                                sjn.LIFNode(tau=TAU, step_mode="m"))
            return net, sjf.reset_net
        out["SpikingJelly Linear+LIF"] = (None, sj)
    except ImportError:
        pass
    return out


def _peak_bytes(step) -> int:
    """The largest total size of tensors created by ``step()`` and alive at the same time."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    live = peak = 0
    sizes = {}
    for _, action, key, size in prof._memory_profile().timeline:
        if action == Action.CREATE:
            sizes[key] = size
            live += size
        elif action == Action.DESTROY and key in sizes:
            live -= sizes.pop(key)
        peak = max(peak, live)
    return peak


class _Source(torch.autograd.Function):
    """A fresh copy of the spikes with a gradient path, as a previous layer's output: referenced by nothing but
    the graph (so it stays alive only if the layer under test saves it); its gradient is dropped."""

    @staticmethod
    def forward(ctx, anchor, spikes):
        return spikes.clone()

    @staticmethod
    def backward(ctx, g):
        return None, None


def _measure(name, density, factory, shape, default_density, repeat, memory, grad_seed=1):
    T, B, K = shape
    d = default_density if density is None else density
    x = (torch.rand(T, B, K, generator=torch.Generator().manual_seed(0)) < d).float()
    module, reset = factory()
    g = None

    def fwd():
        reset(module)
        return module(x)

    with torch.no_grad():
        f_ms = _best_ms(fwd, torch.device("cpu"), repeat)
    xg = x.clone().requires_grad_()
    anchor = torch.zeros((), requires_grad=True)

    def step(make=lambda: xg):
        nonlocal g
        reset(module)
        xg.grad = None
        for p in module.parameters():
            p.grad = None
        out = module(make())
        if g is None:
            g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed))
        out.backward(g)

    fb_ms = _best_ms(step, torch.device("cpu"), repeat)
    peak = _peak_bytes(lambda: step(lambda: _Source.apply(anchor, x))) if memory else None
    del module, xg
    gc.collect()
    return dict(impl=name, density=d, fwd_ms=f_ms[0], fwd_cpu_ms=f_ms[1], fwd_bwd_ms=fb_ms[0], fwd_bwd_cpu_ms=fb_ms[1],
                peak_mb=None if peak is None else peak / 2 ** 20)


def _goals(rows: list[dict], densities) -> dict:
    """The issue's figures: event Linear vs the dense Linear alone (fwd+bwd >= 1.4x, fwd >= 3x) at each density
    <= 10 %, and the event layer's peak memory <= half the fastest peer's."""
    by = {r["impl"]: r for r in rows}
    dense = by.get("dense Linear")
    peer = by.get("SpikingJelly Linear+LIF")
    goals = {}
    for d in densities:
        ev, evn = by.get(f"snn event Linear @{d:g}"), by.get(f"snn event Linear+LIF @{d:g}")
        if not (ev and dense):
            continue
        g = dict(fwd_speedup=round(dense["fwd_ms"] / ev["fwd_ms"], 2),
                 fwd_bwd_speedup=round(dense["fwd_bwd_ms"] / ev["fwd_bwd_ms"], 2),
                 with_lif_fwd_speedup=round(dense["fwd_ms"] / evn["fwd_ms"], 2),
                 with_lif_fwd_bwd_speedup=round(dense["fwd_bwd_ms"] / evn["fwd_bwd_ms"], 2))
        g["fwd_3x"] = g["fwd_speedup"] >= 3.0
        g["fwd_bwd_1.4x"] = g["fwd_bwd_speedup"] >= 1.4
        if peer and peer.get("peak_mb") and evn.get("peak_mb") is not None:
            g["peak_mb_vs_peer"] = round(evn["peak_mb"] / peer["peak_mb"], 3)
            g["peak_half_of_peer"] = g["peak_mb_vs_peer"] <= 0.5
        goals[f"density={d:g}"] = g
    return goals


def format_table(result: dict) -> str:
    lines = [f"Linear({result['features']} -> {result['features']}) layers, batch {result['batch']}, T={result['T']}, "
             f"{result['threads']} threads, {result['device']}; best of {result['repeat']}; wall ms (process CPU ms)",
             f"{'impl':<28}{'density':>8}{'fwd ms':>16}{'fwd+bwd ms':>18}{'peak MB':>10}"]
    for r in result["rows"]:
        peak = f"{r['peak_mb']:.1f}" if r.get("peak_mb") is not None else ""
        lines.append(f"{r['impl']:<28}{r['density']:>8.2f}{r['fwd_ms']:>8.1f} ({r['fwd_cpu_ms']:>6.1f})"
                     f"{r['fwd_bwd_ms']:>9.1f} ({r['fwd_bwd_cpu_ms']:>6.1f}){peak:>10}")
    for key, g in result["goals"].items():
        lines.append(f"goals {key}: {g}")
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, default=500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--features", type=int, default=1024)
    p.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.05])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory run (profiler)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "layer_throughput.json"))
    a = p.parse_args(argv)
    for name in ("T", "batch", "features", "threads", "repeat"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1")
    if not a.densities or not all(0 < d <= 1 for d in a.densities):
        p.error("--densities must be rates in (0, 1]")
    torch.set_num_threads(a.threads)
    notes = []
    if not kernels.available():
        notes.append("the event-driven kernels are not built: event rows skipped")
    rows = []
    for name, (density, factory) in _contenders(a.features, a.densities).items():
        rows.append(_measure(name, density, factory, (a.T, a.batch, a.features), max(a.densities), a.repeat,
                             not a.no_memory))
        print(f"{name}: fwd {rows[-1]['fwd_ms']:.1f} ms, fwd+bwd {rows[-1]['fwd_bwd_ms']:.1f} ms", flush=True)
    result = dict(T=a.T, batch=a.batch, features=a.features, threads=a.threads, repeat=a.repeat,
                  device=platform.processor() or platform.machine(), torch=torch.__version__,
                  load_average=os.getloadavg(), rows=rows, goals=_goals(rows, a.densities), notes=notes)
    print(format_table(result))
    if a.json:
        atomic_write_json(a.json, result)
        print(f"json: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
