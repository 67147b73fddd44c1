"""Side-by-side throughput of the multi-step LIF: snn's kernels against the peers.

For every size ``T x N`` (float32) it times, under the same allocator settings:

* ``copy``: copying the input into a preallocated buffer (read T·N + write T·N), the roofline;
* the forward (no gradient) and forward+backward (``out.backward(g)`` w.r.t. the input) of
  snn ``cpp`` / ``torch`` on CPU (``cuda`` / ``triton`` / ``torch`` on a GPU), SpikingJelly 2.0
  ``LIFNode(step_mode='m')``, snnTorch ``Leaky`` (a loop over time) and Norse ``LIF``, each
  skipped with a note when not installed.

All run the same LIF (tau = 2, V_th = 1, hard reset to 0, sigmoid-type surrogate; snnTorch
``beta = 1 - 1/tau``). Timings are the best of ``repeat`` (or more, for fast cases) runs after a warm-up. On a GPU the
report adds the achieved memory bandwidth of the forward (``2·T·N·4`` bytes: read X, write S)
against the copy and the device's nominal peak.

:func:`run` is what ``snn bench kernels`` and ``benchmarks/lif_throughput.py`` call.
"""
from __future__ import annotations

import gc
import math
import os
import platform
import time
from typing import Callable

import torch

__all__ = ["run", "format_table", "DEFAULT_T", "DEFAULT_N"]

DEFAULT_T = (4, 16, 64)
DEFAULT_N = (65536, 1048576)
TAU = 2.0
# Nominal peak DRAM bandwidth (GB/s) by device-name fragment, for the GPU report.
_PEAK_GBPS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 NVL": 3900.0, "H100 PCIe": 2000.0, "H100": 3350.0,
              "A100-SXM4-80GB": 2039.0, "A100 80GB PCIe": 1935.0, "A100": 1555.0, "L40S": 864.0, "L4": 300.0,
              "A10": 600.0, "V100": 900.0, "T4": 320.0}


# ----------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_ms(fn: Callable[[], object], device: torch.device, repeat: int, min_total_s: float = 0.3):
    """Best wall time and best process CPU time (ms) of at least ``repeat`` runs, more (up to 10x)
    for fast cases until ``min_total_s`` has been spent.

    On a shared machine the minimum is the figure least disturbed by other load; the CPU time
    (all threads of this process, spinning OpenMP threads included) does not count the time
    the process waited for a core, so it is the steadier figure there.
    """
    fn()  # warm-up (first-touch of buffers, kernel compilation)
    _sync(device)
    best, best_cpu, spent, runs = math.inf, math.inf, 0.0, 0
    while runs < repeat or (spent < min_total_s and runs < 10 * repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best, best_cpu, spent, runs = min(best, dt), min(best_cpu, dc), spent + dt, runs + 1
    return best * 1e3, best_cpu * 1e3


# ----------------------------------------------------------------------------------- contenders
def _snn_fn(backend: str):
    from .. import ops
    from .. import surrogate as sg
    sur = sg.Sigmoid()

    def make(x):
        v0 = torch.zeros_like(x[0])
        return lambda inp: ops.lif_multistep(inp, v0, 1.0 / TAU, backend=backend, v_threshold=1.0, v_reset=0.0,
                                             decay_input=True, detach_reset=False, surrogate=sur)[0]
    return make


def _spikingjelly():
    from spikingjelly.activation_based import functional as sjf
    from spikingjelly.activation_based import neuron as sjn

    def make(x):
        node = sjn.LIFNode(tau=TAU, step_mode="m").to(x.device)

        def f(inp):
            sjf.reset_net(node)
            return node(inp)
        return f
    return make


def _snntorch():
    import snntorch

    def make(x):
        node = snntorch.Leaky(beta=1.0 - 1.0 / TAU).to(x.device)

        def f(inp):
            mem = torch.zeros_like(inp[0])
            out = []
            for t in range(inp.shape[0]):
                spk, mem = node(inp[t], mem)
                out.append(spk)
            return torch.stack(out)
        return f
    return make


def _norse():
    import norse.torch as nt

    def make(x):
        node = nt.LIF().to(x.device)
        return lambda inp: node(inp)[0]
    return make


def _contenders(device: torch.device) -> dict[str, Callable]:
    """name -> factory(x) -> fn(x) returning the spikes; snn first, then the peers."""
    from .. import ops
    out: dict[str, Callable] = {}
    mine = ("cuda", "triton", "torch") if device.type == "cuda" else ("cpp", "torch")
    probe = torch.empty(0, device=device)
    for b in mine:
        try:
            ops.resolve_backend(b, probe, "lif")
        except RuntimeError:  # not built here, or cannot run this device
            continue
        out[f"snn-{b}"] = _snn_fn(b)
    for name, factory in (("spikingjelly", _spikingjelly), ("snntorch", _snntorch), ("norse", _norse)):
        try:
            out[name] = factory()
        except ImportError:
            continue
    return out


PEERS = ("spikingjelly", "snntorch", "norse")


# ----------------------------------------------------------------------------------- one size
def _measure_size(T: int, N: int, device: torch.device, contenders: dict, repeat: int, notes: list) -> list[dict]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(T, N, generator=gen) * 1.5).to(device)
    buf = torch.empty_like(x)
    ms, cpu = _best_ms(lambda: buf.copy_(x), device, repeat)
    rows = [dict(T=T, N=N, impl="copy", mode="copy", ms=ms, cpu_ms=cpu)]
    del buf
    grad_out = torch.ones_like(x)
    for name, factory in contenders.items():
        try:
            fn = factory(x)
            with torch.no_grad():
                fwd = _best_ms(lambda: fn(x), device, repeat)
            xg = x.clone().requires_grad_()

            def step():
                xg.grad = None
                fn(xg).backward(grad_out)
            fb = _best_ms(step, device, repeat)
            del xg
        except Exception as e:  # a peer failing must not sink the benchmark
            notes.append(f"{name} T={T} N={N}: {type(e).__name__}: {e}")
            continue
        finally:
            gc.collect()
        rows.append(dict(T=T, N=N, impl=name, mode="fwd", ms=fwd[0], cpu_ms=fwd[1]))
        rows.append(dict(T=T, N=N, impl=name, mode="fwd+bwd", ms=fb[0], cpu_ms=fb[1]))
    return rows


def _annotate(rows: list[dict], device: torch.device) -> None:
    """Add ratio to copy, speed-up over the fastest peer and (GPU) achieved bandwidth."""
    copy = {(r["T"], r["N"]): r for r in rows if r["impl"] == "copy"}
    for r in rows:
        key = (r["T"], r["N"])
        r["x_copy"] = r["ms"] / copy[key]["ms"]
        r["cpu_x_copy"] = r["cpu_ms"] / copy[key]["cpu_ms"] if copy[key]["cpu_ms"] > 0 else None
        r["gbps"] = 2 * r["T"] * r["N"] * 4 / (r["ms"] * 1e-3) / 1e9 if r["mode"] in ("copy", "fwd") else None
        peers = [p["ms"] for p in rows if (p["T"], p["N"]) == key and p["impl"] in PEERS and p["mode"] == r["mode"]]
        r["speedup_vs_best_peer"] = (min(peers) / r["ms"]) if peers and r["impl"].startswith("snn-") else None
        cpu_peers = [p["cpu_ms"] for p in rows
                     if (p["T"], p["N"]) == key and p["impl"] in PEERS and p["mode"] == r["mode"]]
        r["cpu_speedup_vs_best_peer"] = (min(cpu_peers) / r["cpu_ms"]) if cpu_peers and r["cpu_ms"] > 0 \
            and r["impl"].startswith("snn-") else None


def _peak_gbps(device: torch.device):
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for frag, gbps in _PEAK_GBPS.items():
        if frag in name:
            return gbps
    return None


# ----------------------------------------------------------------------------------- report
def format_table(result: dict) -> str:
    """The human table: ms, x of the copy roofline, speed-up over the fastest peer (and GB/s on GPU)."""
    lines = [f"LIF multi-step throughput on {result['device']} ({result['threads']} threads, "
             f"malloc tuned: {result['malloc_tuned']}); best of >= {result['repeat']} runs; wall ms, then "
             f"process CPU ms (all threads)"]
    gpu = result["device_type"] == "cuda"
    head = (f"{'T':>4} {'N':>8}  {'impl':<14}{'mode':<9}{'ms':>10}{'x copy':>9}{'vs best peer':>14}"
            f"{'cpu ms':>10}{'x copy':>9}{'vs best peer':>14}")
    lines.append(head + (f"{'GB/s':>9}" if gpu else ""))
    for r in result["rows"]:
        sp = f"{r['speedup_vs_best_peer']:.1f}x" if r.get("speedup_vs_best_peer") else ""
        csp = f"{r['cpu_speedup_vs_best_peer']:.1f}x" if r.get("cpu_speedup_vs_best_peer") else ""
        cx = f"{r['cpu_x_copy']:.2f}" if r.get("cpu_x_copy") is not None else ""
        line = (f"{r['T']:>4} {r['N']:>8}  {r['impl']:<14}{r['mode']:<9}{r['ms']:>10.2f}{r['x_copy']:>9.2f}{sp:>14}"
                f"{r['cpu_ms']:>10.2f}{cx:>9}{csp:>14}")
        if gpu:
            line += f"{r['gbps']:>9.0f}" if r.get("gbps") else f"{'':>9}"
        lines.append(line)
    if result.get("peak_gbps"):
        lines.append(f"nominal peak bandwidth {result['peak_gbps']:.0f} GB/s")
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_write_bytes

    rows = result["rows"]
    sizes = sorted({(r["T"], r["N"]) for r in rows}, key=lambda s: s[0] * s[1])
    labels = [f"T={t}\nN={n // 1024}k" for t, n in sizes]
    impls = [i for i in dict.fromkeys(r["impl"] for r in rows) if i != "copy"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    width = 0.8 / max(1, len(impls))
    for ax, mode in zip(axes, ("fwd", "fwd+bwd")):
        for k, impl in enumerate(impls):
            ys = []
            for s in sizes:
                r = next((r for r in rows if (r["T"], r["N"]) == s and r["impl"] == impl and r["mode"] == mode), None)
                ys.append(s[0] * s[1] / (r["ms"] * 1e-3) / 1e9 if r else float("nan"))
            ax.bar([i + (k - (len(impls) - 1) / 2) * width for i in range(len(sizes))], ys, width, label=impl)
        roof = [s[0] * s[1] / (next(r for r in rows if (r["T"], r["N"]) == s and r["impl"] == "copy")["ms"] * 1e-3)
                / 1e9 for s in sizes]
        ax.plot(range(len(sizes)), roof, "k_", markersize=40, mew=2, label="copy roofline")
        ax.set_xticks(range(len(sizes)), labels)
        ax.set_yscale("log")
        ax.set_title(f"LIF {mode}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("G neuron-steps / s (higher is better)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"snn LIF kernels vs peers on {result['device']} ({result['threads']} threads)")
    fig.tight_layout()
    import io
    bio = io.BytesIO()
    fig.savefig(bio, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, bio.getvalue())


def run(T_list=DEFAULT_T, N_list=DEFAULT_N, threads: int = 2, json_path: str | None = None,
        png_path: str | None = None, *, repeat: int = 5, device: str | None = None,
        include_peers: bool = True) -> dict:
    """Run the benchmark; returns ``{'rows': [...], 'goals': {...}, ...}`` and writes JSON/PNG if asked.

    ``device`` defaults to ``'cuda'`` when a GPU is visible, else ``'cpu'``. ``threads`` sets
    ``torch.set_num_threads`` (CPU) for the whole run and is restored afterwards.
    """
    from .. import ops
    from ..io import atomic_write_json

    T_list, N_list = [int(t) for t in T_list], [int(n) for n in N_list]
    if not T_list or not N_list or min(T_list) < 1 or min(N_list) < 1:
        raise ValueError(f"bench kernels: T and N must be positive integers, got T={T_list} N={N_list}")
    if threads < 1:
        raise ValueError(f"bench kernels: threads must be >= 1, got {threads}")
    if repeat < 1:
        raise ValueError(f"bench kernels: repeat must be >= 1, got {repeat}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("bench kernels: device 'cuda' asked for but no GPU is visible")
    ops.available_backends()  # loads the cpp backend (and its malloc tuning) before any timing
    contenders = _contenders(dev)
    if not include_peers:
        contenders = {k: v for k, v in contenders.items() if k not in PEERS}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    notes: list[str] = []
    missing = [p for p in PEERS if p not in contenders] if include_peers else []
    if missing:
        notes.append(f"not installed, skipped: {', '.join(missing)}")
    rows: list[dict] = []
    try:
        for T in T_list:
            for N in N_list:
                rows += _measure_size(T, N, dev, contenders, repeat, notes)
    finally:
        torch.set_num_threads(old_threads)
    _annotate(rows, dev)
    try:
        from ..ops import cpp_backend
        tuned = cpp_backend.malloc_tuned()
    except ImportError:
        tuned = False
    result = dict(device=(torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
                          or platform.machine()),
                  device_type=dev.type, threads=threads, repeat=repeat, malloc_tuned=tuned,
                  torch=torch.__version__, cpu_count=os.cpu_count(), peak_gbps=_peak_gbps(dev), rows=rows,
                  notes=notes)
    result["goals"] = _goals(rows, dev)
    if json_path:
        atomic_write_json(json_path, result)
    if png_path:
        _plot(result, png_path)
    return result


def _goals(rows: list[dict], dev: torch.device) -> dict:
    """The throughput goals per size for the main backend: fwd+bwd >= 10x the fastest peer, <= 3.5x the copy,
    fwd <= 2x the copy (benchmarks/RESULTS.md)."""
    main = "snn-cuda" if dev.type == "cuda" else "snn-cpp"
    goals = {}
    for r in rows:
        if r["impl"] != main:
            continue
        key = f"T={r['T']},N={r['N']}"
        g = goals.setdefault(key, {})
        if r["mode"] == "fwd":
            g["fwd_x_copy"] = round(r["x_copy"], 2)
            g["fwd_within_2x_copy"] = r["x_copy"] <= 2.0
        else:
            g["fwd_bwd_x_copy"] = round(r["x_copy"], 2)
            g["fwd_bwd_within_3.5x_copy"] = r["x_copy"] <= 3.5
            sp = r.get("speedup_vs_best_peer")
            g["fwd_bwd_speedup_vs_best_peer"] = round(sp, 1) if sp else None
            g["fwd_bwd_10x_faster_than_peers"] = bool(sp and sp >= 10)
    return goals
