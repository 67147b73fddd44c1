"""Peak memory of one training step of a zoo model with BPTT and with OTTT as the number of time steps T grows.

    .venv/bin/python benchmarks/memory_bptt_ottt.py --model vgg11_ws --Ts 4,16,64 \\
        --json benchmarks/results/memory_bptt_ottt.json

One step is ``method.train_batch``: zero the gradients, forward, backward, optimizer step (SGD with momentum),
on a batch of random event frames ``[T, B, 2, 34, 34]`` (counts drawn with the stand-in's density) and random
labels. Both methods train the same model (the weight-standardised VGG-11 OTTT needs: BatchNorm has no online
form). Every (method, T) runs in its own process, so that one measurement's peak cannot hide another's; each
process first takes one step at T = 1 (libraries, kernels and the optimizer's momentum buffers are then in
place) and then measures the step at T:

- ``saved``: the peak bytes of the tensors autograd keeps for the backward pass (:class:`snn.train.PeakMemory`,
  de-duplicated by storage, counted from their saving until their graph is freed). BPTT keeps every step's
  graph, so its figure is ~ T x one step's; OTTT frees each step's graph before the next, so its figure is one
  step's whatever T.
- ``rss``: the growth of the process's resident set during the step, its high-water mark (``VmHWM``, reset
  just before the step) minus its size before the step (Linux; elsewhere the peak since the start).
- on CUDA (``--device cuda``) ``saved`` is the allocator's peak (``torch.cuda.max_memory_allocated``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

from snn import models
from snn.checks import check_int, check_range
from snn.io import atomic_write_json
from snn.train import PeakMemory
from snn.train.methods import make_method

DEFAULT_JSON = os.path.join(os.path.dirname(__file__), "results", "memory_bptt_ottt.json")
METHODS = ("bptt", "ottt")


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), or None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_peak_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb // 1024 if sys.platform == "darwin" else kb


def batch(T: int, args, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random event frames ``[T, B, *shape]`` (0/1 counts, ``args.density`` of them 1) and labels."""
    g = torch.Generator().manual_seed(args.seed + T)
    x = (torch.rand((T, args.batch_size, *args.shape), generator=g) < args.density).float()
    y = torch.randint(0, args.num_classes, (args.batch_size,), generator=g)
    return x.to(device), y.to(device)


def measure(method_name: str, T: int, args) -> dict:
    """One (method, T) measurement in this process (see the module docstring)."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = models.get(args.model, num_classes=args.num_classes, in_channels=args.shape[0], T=T,
                       **json.loads(args.arch)).to(device)
    x, y = batch(T, args, device)
    method = make_method(method_name, model=model, x_seq=x)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    method.train_batch(model, x[:1], y, opt, denom=args.batch_size)  # warm-up at T = 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rss_before = _status_kib("VmRSS")
    hwm_reset = _reset_rss_peak()
    meter = PeakMemory(device)
    start = time.perf_counter()
    with meter:
        loss, _ = method.train_batch(model, x, y, opt, denom=args.batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    rss_peak = _rss_peak_kib()
    return {"method": method_name, "T": T, "saved_mb": meter.peak_mb, "saved_kind": meter.kind,
            "rss_delta_mb": (rss_peak - rss_before) / 1024 if hwm_reset and rss_before is not None else None,
            "rss_peak_mb": rss_peak / 1024, "step_s": seconds, "loss": loss,
            "params": sum(p.numel() for p in model.parameters()), "input_mb": x.numel() * x.element_size() / 2**20}


def run_child(method_name: str, T: int, argv: list[str]) -> dict:
    """``measure`` in a fresh Python process; its last stdout line is the row (JSON)."""
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--worker", method_name, str(T)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"method": method_name, "T": T, "error": (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1],
                "stderr_tail": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(v, spec=".1f") -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict], Ts: list[int]) -> str:
    """T, saved MiB of each method and their ratio, then the RSS growth of each."""
    by = {(r["method"], r["T"]): r for r in rows}
    lines = [f"{'T':>4} | {'BPTT saved MiB':>14} | {'OTTT saved MiB':>14} | {'BPTT/OTTT':>9} | "
             f"{'BPTT RSS+ MiB':>13} | {'OTTT RSS+ MiB':>13} | {'BPTT s':>6} | {'OTTT s':>6}"]
    for T in Ts:
        b, o = by.get(("bptt", T), {}), by.get(("ottt", T), {})
        ratio = b["saved_mb"] / o["saved_mb"] if "saved_mb" in b and "saved_mb" in o and o["saved_mb"] else None
        lines.append(f"{T:>4} | {_fmt(b.get('saved_mb')):>14} | {_fmt(o.get('saved_mb')):>14} | "
                     f"{_fmt(ratio, '.2f'):>9} | {_fmt(b.get('rss_delta_mb')):>13} | {_fmt(o.get('rss_delta_mb')):>13} | "
                     f"{_fmt(b.get('step_s'), '.2f'):>6} | {_fmt(o.get('step_s'), '.2f'):>6}")
    for r in rows:
        if "error" in r:
            lines.append(f"{r['method']} T={r['T']} FAILED: {r['error']}")
    return "\n".join(lines)


def growth(rows: list[dict], Ts: list[int]) -> dict:
    """Each method's saved figure at the largest T over the smallest (BPTT ~ T ratio, OTTT ~ 1)."""
    out = {}
    for m in METHODS:
        got = {r["T"]: r["saved_mb"] for r in rows if r["method"] == m and "saved_mb" in r}
        if min(Ts) in got and max(Ts) in got and got[min(Ts)]:
            out[m] = got[max(Ts)] / got[min(Ts)]
    return out


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg11_ws", help=f"a zoo model: {', '.join(models.available())}")
    p.add_argument("--arch", default='{"width": 0.125}', help="JSON of further snn.models.get arguments")
    p.add_argument("--Ts", default="4,16,64", help="comma-separated numbers of time steps")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shape", default="2,34,34", help="C,H,W of one frame (the event-FMNIST stand-in's)")
    p.add_argument("--density", type=float, default=0.05, help="fraction of input pixels with an event")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=DEFAULT_JSON, help="where the rows go (JSON)")
    p.add_argument("--worker", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    who = "memory_bptt_ottt"
    try:
        args.Ts = [check_int(int(t), "--Ts", who, low=1) for t in args.Ts.split(",")]
        args.shape = tuple(check_int(int(s), "--shape", who, low=1) for s in args.shape.split(","))
    except ValueError as e:
        p.error(f"--Ts and --shape take comma-separated positive integers ({e})")
    if len(args.shape) != 3:
        p.error(f"--shape takes C,H,W (three integers), got {args.shape}")
    args.methods = args.methods.split(",")
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        p.error(f"--methods: unknown {bad}; accepted: {', '.join(METHODS)}")
    if args.model not in models.available():
        p.error(f"--model {args.model!r} is not a zoo model; available: {', '.join(models.available())}")
    try:
        arch = json.loads(args.arch)
    except json.JSONDecodeError as e:
        p.error(f"--arch must be a JSON object of snn.models.get arguments ({e})")
    if not isinstance(arch, dict):
        p.error(f"--arch must be a JSON object, got {args.arch!r}")
    check_int(args.batch_size, "--batch-size", who, low=1)
    check_int(args.threads, "--threads", who, low=1)
    check_range(args.density, "--density", who, low=0.0, high=1.0)
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args)), flush=True)
        return
    rows = []
    for T in args.Ts:
        for m in args.methods:
            row = run_child(m, T, argv)
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "stderr_tail"},
                  flush=True)
    print(table(rows, args.Ts))
    g = growth(rows, args.Ts)
    for m, r in g.items():
        print(f"{m}: saved memory at T={max(args.Ts)} is {r:.2f}x its T={min(args.Ts)} figure "
              f"(T ratio {max(args.Ts) / min(args.Ts):.0f}x)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    atomic_write_json(args.json, {
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "worker")}, "rows": rows,
        "growth_saved_max_over_min_T": g, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                      "torch": torch.__version__, "load_average": load}})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
