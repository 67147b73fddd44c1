"""Spike-sparse inference of trained networks: dense vs sparse vs auto (snn.sparse.SparseNet), side by side.

For each model (the ``mlp`` preset with two hidden layers of 512, the ``csnn`` preset) it

1. trains the model briefly (``snn.train.fit``, Fashion-MNIST when its files are found, else the digits; direct
   encoding), so that every layer fires at its natural, trained rate;
2. times inference of test images (``T`` steps, batch 1 and 128) with every Linear and Conv2d layer on the dense
   path, on the sparse path (the layers fed by spikes; a layer fed by pixels stays dense), and on ``'auto'`` (the
   machine's crossover rate, :func:`snn.sparse.crossover`), and dense with the fused blocks of :func:`snn.fused.fuse`
   (BatchNorm folded into the convolutions), and checks that the outputs agree (the sparse path sums in another
   order: equal to rounding);
3. times each spike-fed layer alone (Linear, or Conv2d with its BatchNorm) at its natural input rate and at 5 %
   firing, dense vs sparse;
4. reports the measured crossover rates (:func:`snn.sparse.calibrate`) and what ``'auto'`` chose per layer.

Timings: best of ``--repeat`` runs after a warm-up, wall ms (and process CPU ms, steadier on a busy machine);
batch 1 on one thread (``--batch1-threads``), larger batches on ``--threads``.

    .venv/bin/python benchmarks/sparse_inference.py                       # both models
    .venv/bin/python benchmarks/sparse_inference.py --train-samples 600 --repeat 3   # a quick run

Writes benchmarks/results/sparse_inference.json unless told otherwise.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import snn  # noqa: E402
from snn import data, models  # noqa: E402
from snn.bench.kernels import _best_ms  # noqa: E402
from snn.fused import fuse  # noqa: E402
from snn.io import atomic_write_json  # noqa: E402
from snn.sparse import SparseNet, calibrate, crossover, kernels  # noqa: E402
from snn.train import fit  # noqa: E402

CPU = torch.device("cpu")
MODELS = {"mlp": lambda shape: models.mlp(in_shape=shape, hidden=(512, 512)),
          "csnn": lambda shape: models.csnn(in_shape=shape, channels=(32, 64))}


def _data(name: str, train_samples: int, test_samples: int):
    name = data.resolve_name("auto") if name == "auto" else name
    train = data.get_dataset(name, split="train").subset(train_samples, seed=0)
    test = data.get_dataset(name, split="test").subset(test_samples, seed=1)
    return name, train, test


def _train(name, shape, train, test, T, epochs, seed):
    torch.manual_seed(seed)
    model = MODELS[name](shape)
    res = fit(model, DataLoader(train, batch_size=64, shuffle=True), DataLoader(test, batch_size=256), T=T,
              epochs=epochs, lr=1e-3, log=None, progress=False, seed=seed)
    return model.eval(), res


def _spike_fed(model: nn.Module) -> list[str]:
    """The Linear and Conv2d layers whose input comes from a neuron (through pooling or flattening)."""
    names, after_neuron = [], False
    for name, m in model.named_children():
        if isinstance(m, snn.neuron.BaseNeuron):
            after_neuron = True
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            if after_neuron:
                names.append(name)
            after_neuron = False
    return names


def _inputs(test, T, batch):
    x = torch.stack([test[i][0] for i in range(batch)])
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()           # direct encoding: the frame at every step


def _compare(a: torch.Tensor, b: torch.Tensor) -> dict:
    return dict(identical=bool(torch.equal(a, b)), max_abs_diff=float((a - b).abs().max()))


def _threads_for(batch: int, threads: int, batch1_threads: int) -> int:
    """Batch-1 inference runs on ``batch1_threads`` (one by default: a latency-bound single sample gains nothing
    from a second thread, and on a shared machine waiting for one dominates); larger batches on ``threads``."""
    n = batch1_threads if batch == 1 else threads
    torch.set_num_threads(n)
    return n


def _network_rows(name, model, test, T, batches, repeat, threads):
    fed = _spike_fed(model)
    modes = {"dense": "dense", "sparse": {n: "sparse" for n in fed}, "auto": "auto"}
    nets = {k: SparseNet(model, m) for k, m in modes.items()}
    fused = fuse(copy.deepcopy(model)).eval()            # dense, BatchNorm folded into the convolutions

    def run_fused(x):
        snn.reset(fused)
        with torch.no_grad():
            return fused(x)
    rows = []
    for batch in batches:
        n_threads = _threads_for(batch, *threads)
        x = _inputs(test, T, batch)
        outs = {k: net(x) for k, net in nets.items()}
        outs["fused"] = run_fused(x)
        row = dict(model=name, batch=batch, T=T, threads=n_threads,
                   rates={n: p["rate"] for n, p in nets["auto"].paths().items()},
                   auto_paths={n: p["path"] for n, p in nets["auto"].paths().items()},
                   sparse_vs_dense=_compare(outs["sparse"], outs["dense"]),
                   auto_vs_dense=_compare(outs["auto"], outs["dense"]),
                   fused_vs_dense=_compare(outs["fused"], outs["dense"]))
        for k, fn in (*nets.items(), ("fused", run_fused)):
            ms, cpu = _best_ms(lambda: fn(x), CPU, repeat)
            row[f"{k}_ms"], row[f"{k}_cpu_ms"] = ms, cpu
        row["sparse_speedup"] = row["dense_ms"] / row["sparse_ms"]
        row["auto_speedup"] = row["dense_ms"] / row["auto_ms"]
        row["fused_speedup"] = row["dense_ms"] / row["fused_ms"]
        rows.append(row)
    return rows


def _layer_inputs(model, x, names):
    """The input of each layer ``names`` of ``model`` on ``x`` (forward hooks)."""
    seen = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, i[0].detach()))
             for n in names]
    snn.reset(model)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def _layer_rows(name, model, test, T, batches, repeat, threads):
    """Each spike-fed layer alone (its BatchNorm folded in on the sparse path), dense vs sparse, at its natural
    input and at 5 % firing."""
    rows = []
    fed = _spike_fed(model)
    paths = {k: SparseNet(model, {n: k for n in fed}).net for k in ("dense", "sparse")}
    for batch in batches:
        n_threads = _threads_for(batch, *threads)
        natural = _layer_inputs(model, _inputs(test, T, batch), fed)
        for layer in fed:
            x_nat = natural[layer]
            x5 = (torch.rand(x_nat.shape, generator=torch.Generator().manual_seed(0)) < 0.05).float()
            dense, sparse = (paths[k].get_submodule(layer) for k in ("dense", "sparse"))
            for label, x in (("natural", x_nat), ("5%", x5)):
                with torch.no_grad():
                    d = _best_ms(lambda: dense(x), CPU, repeat)
                    e = _best_ms(lambda: sparse(x), CPU, repeat)
                kind = "forward" if isinstance(model.get_submodule(layer), nn.Linear) else "conv"
                n_rows = x.numel() // max(1, x[(0,) * (x.dim() - (1 if kind == "forward" else 3))].numel())
                rows.append(dict(model=name, layer=layer, kind=kind, batch=batch, threads=n_threads, rows=n_rows,
                                 input=label,
                                 shape=list(model.get_submodule(layer).weight.shape),
                                 rate=float((x != 0).float().mean()), dense_ms=d[0], sparse_ms=e[0],
                                 dense_cpu_ms=d[1], sparse_cpu_ms=e[1], speedup=d[0] / e[0],
                                 cpu_speedup=d[1] / max(e[1], 1e-6),
                                 crossover=crossover(n_rows, kind)))
    return rows


def format_table(result: dict) -> str:
    lines = [f"spike-sparse inference on {result['device']} ({result['threads']} threads, batch 1 on "
             f"{result['batch1_threads']}), data {result['data']}, "
             f"T={result['T']}; best of {result['repeat']}; wall ms (process CPU ms)",
             f"crossover measured: Linear {result['crossover']['forward']}, conv {result['crossover']['conv']}",
             f"{'model':<6}{'batch':>6}{'dense':>19}{'sparse':>19}{'auto':>19}{'fused':>19}{'sparse x':>9}{'auto x':>8}"
             f"{'fused x':>8}  outputs"]
    for r in result["networks"]:
        cells = "".join(f"{r[k + '_ms']:>10.2f} ({r[k + '_cpu_ms']:>6.2f})"
                        for k in ("dense", "sparse", "auto", "fused"))
        diff = r["sparse_vs_dense"]
        same = "identical" if diff["identical"] else f"max diff {diff['max_abs_diff']:.2g}"
        lines.append(f"{r['model']:<6}{r['batch']:>6}{cells}{r['sparse_speedup']:>9.2f}{r['auto_speedup']:>8.2f}"
                     f"{r['fused_speedup']:>8.2f}  {same}")
        rates = ", ".join(f"{n}: {v:.3f} -> {r['auto_paths'][n]}" for n, v in r["rates"].items() if v is not None)
        lines.append(f"{'':<12}input rates (auto's path): {rates}")
    lines.append(f"{'layer':<22}{'batch':>6}{'input':>9}{'rate':>7}{'dense ms':>18}{'sparse ms':>18}{'x':>7}"
                 f"{'cpu x':>7}{'crossover':>11}")
    for r in result["layers"]:
        lines.append(f"{r['model'] + ' ' + r['layer'] + ' ' + 'x'.join(map(str, r['shape'])):<22}{r['batch']:>6}"
                     f"{r['input']:>9}{r['rate']:>7.3f}{r['dense_ms']:>9.3f} ({r['dense_cpu_ms']:>6.3f})"
                     f"{r['sparse_ms']:>9.3f} ({r['sparse_cpu_ms']:>6.3f}){r['speedup']:>7.2f}{r['cpu_speedup']:>7.2f}"
                     f"{r['crossover']:>11.3f}")
    for key, g in result["goals"].items():
        lines.append(f"goals {key}: {g}")
    return "\n".join(lines)


def _goals(layers) -> dict:
    """Sparse at least 3x faster than dense at 5 % firing, batch 1 (each spike-fed layer)."""
    out = {}
    for r in layers:
        if r["input"] == "5%":
            key = f"{r['model']} layer {r['layer']} batch {r['batch']}"
            out[key] = dict(speedup_at_5pct=round(r["speedup"], 2), cpu_speedup_at_5pct=round(r["cpu_speedup"], 2),
                            **({"3x": r["speedup"] >= 3} if r["batch"] == 1 else {}))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    p.add_argument("--data", choices=data.DATASETS, default="auto")
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--train-samples", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch1-threads", type=int, default=1, help="threads for the batch-1 rows")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=os.path.join(HERE, "results", "sparse_inference.json"))
    a = p.parse_args(argv)
    for name in ("T", "train_samples", "epochs", "threads", "batch1_threads", "repeat"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not a.batches or min(a.batches) < 1:
        p.error("--batches must be positive")
    if not kernels.available():
        p.error("the event-driven kernels are not built here (make build)")
    torch.set_num_threads(a.threads)
    name, train, test = _data(a.data, a.train_samples, max(1000, max(a.batches)))
    shape = tuple(train.input_shape)
    cal = calibrate()
    nets, layers, trained = [], [], {}
    for m in a.models:
        model, res = _train(m, shape, train, test, a.T, a.epochs, a.seed)
        trained[m] = dict(val_acc=res.get("val_acc"), train_seconds=res.get("train_seconds"))
        print(f"{m}: trained ({trained[m]})", flush=True)
        nets += _network_rows(m, model, test, a.T, a.batches, a.repeat, (a.threads, a.batch1_threads))
        layers += _layer_rows(m, model, test, a.T, a.batches, a.repeat, (a.threads, a.batch1_threads))
    torch.set_num_threads(a.threads)
    result = dict(data=name, T=a.T, threads=a.threads, batch1_threads=a.batch1_threads, repeat=a.repeat,
                  device=platform.processor() or platform.machine(), torch=torch.__version__,
                  load_average=os.getloadavg(), trained=trained,
                  crossover={k: cal[k] for k in ("forward", "grad_weight", "conv")}, networks=nets, layers=layers,
                  goals=_goals(layers))
    print(format_table(result))
    if a.json:
        atomic_write_json(a.json, result)
        print(f"json: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
