"""Training on full Fashion-MNIST, two benchmarks.

Side by side: the csnn preset (32/64 channels, T=4, LIF), 2 CPU threads, trained by the Trainer, against the
same architecture built from SpikingJelly's modules, trained by SpikingJelly's tutorial loop on the same
batches (same data, seed, epochs, optimizer and cosine schedule; benchmarks/fit_vs_spikingjelly.py)::

    .venv/bin/python benchmarks/train_fashion.py --epochs 2 --lr 2e-3 --json runs/bench_fashion.json

prints and writes (``--json``) accuracy and seconds per epoch for both; ``--only snn|sj`` runs one side.

Defaults: every preset x training method for ``--epochs`` (1) epoch with nothing but TrainConfig's
defaults (lr, batch size, init, encoding), one run after another::

    nice .venv/bin/python benchmarks/train_fashion.py --defaults --models mlp,csnn --methods bptt,dsr,ottt \
        --json runs/bench_fashion_defaults.json

prints a table of test accuracy, seconds of training and firing-rate warnings per run.
Results go into ``benchmarks/RESULTS.md`` (section "Training on Fashion-MNIST") by hand.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn as nn

from snn.io import atomic_write_json
from snn.train import TrainConfig, Trainer


def run(side: str, args) -> dict:
    cfg = TrainConfig(dataset=args.dataset, model="csnn", channels=[32, 64], neuron="lif", method="bptt", T=4,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
                      data_dir=args.data_dir, train_limit=args.train_limit, out=f"{args.out}/{side}",
                      backend=args.backend)
    if side == "sj":
        return run_spikingjelly(cfg, args)
    trainer = Trainer(cfg, log=lambda line: print(f"[{side}] {line}", flush=True))
    t0 = time.perf_counter()
    s = trainer.fit()
    return {"side": side, "test_acc": s["test_acc"], "best_test_acc": s["best_test_acc"],
            "seconds_per_epoch": s["seconds_per_epoch"], "train_seconds": s["train_seconds"],
            "wall_seconds": time.perf_counter() - t0, "epochs": s["epochs"], "backend": s["backend"],
            "history": {k: s["history"][k] for k in ("test_acc", "train_acc", "epoch_seconds")}}


def run_spikingjelly(cfg: TrainConfig, args) -> dict:
    """The csnn from SpikingJelly's modules, trained by its tutorial loop on the batches the Trainer draws."""
    from fit_vs_spikingjelly import sj_accuracy, sj_train_epoch, spikingjelly_csnn

    from snn.train.trainer import load_split

    train, test = load_split(cfg, args.dataset, "train", cfg.train_limit), load_split(cfg, args.dataset, "test", None)
    torch.manual_seed(cfg.seed)
    net = spikingjelly_csnn(1, (32, 64), 10, size=8 if args.dataset == "digits" else 28)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    seconds, acc, t0 = [], [], time.perf_counter()
    for epoch in range(cfg.epochs):
        seconds.append(sj_train_epoch(net, opt, train, cfg.batch_size, cfg.seed, epoch, T=4))
        acc.append(sj_accuracy(net, test, T=4))
        sched.step()
        print(f"[sj] epoch {epoch + 1}/{cfg.epochs} test acc {acc[-1]:.4f} {seconds[-1]:.1f} s", flush=True)
    return {"side": "sj", "test_acc": acc[-1], "best_test_acc": max(acc), "seconds_per_epoch": sum(seconds) / len(seconds),
            "train_seconds": sum(seconds), "wall_seconds": time.perf_counter() - t0, "epochs": cfg.epochs,
            "backend": "spikingjelly-torch", "history": {"test_acc": acc, "epoch_seconds": seconds}}


def defaults(args) -> list[dict]:
    """Each preset x method for ``args.epochs`` epochs with TrainConfig's defaults; accuracy and time per run."""
    rows = []
    for model in args.models.split(","):
        for method in args.methods.split(","):
            cfg = TrainConfig(dataset=args.dataset, model=model, method=method, epochs=args.epochs, seed=args.seed,
                              threads=args.threads, data_dir=args.data_dir, train_limit=args.train_limit,
                              backend=args.backend, progress=False)
            t0 = time.perf_counter()
            s = Trainer(cfg, log=lambda line: print(f"[{model} {method}] {line}", flush=True)).fit()
            rows.append({"model": model, "method": s["method"], "test_acc": s["test_acc"], "epochs": s["epochs"],
                         "train_seconds": s["train_seconds"], "wall_seconds": time.perf_counter() - t0,
                         "lr": cfg.lr, "batch_size": s["batch_size"], "backend": s["backend"],
                         "firing_rate": s["firing_rate"], "activity_warnings": s["activity_warnings"]})
            if args.json:
                atomic_write_json(args.json, {"config": vars(args), "machine": machine(args), "defaults": rows})
    return rows


def machine(args) -> dict:
    return {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "torch": torch.__version__,
            "python": platform.python_version()}


class SJReset(nn.Module):
    """A SpikingJelly network whose state is cleared after every forward (snn's methods reset snn modules only)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x_seq):
        from spikingjelly.activation_based import functional

        out = self.net(x_seq)
        functional.reset_net(self.net)
        return out


def speed(args) -> dict:
    """Seconds per training batch of both networks, measured alternately on the same batches (fair under noise)."""
    from snn import data, encoding
    from snn.models import build_model, model_config
    from fit_vs_spikingjelly import spikingjelly_csnn

    from snn.train.methods import BPTT

    torch.set_num_threads(args.threads)
    x, y = data.load("fashion-mnist", "train", args.data_dir)
    builders = {"snn": lambda: build_model(model_config("csnn", backend=args.backend)),
                "snn-torch": lambda: build_model(model_config("csnn", backend="torch")),
                "sj": lambda: SJReset(spikingjelly_csnn())}
    nets = {}
    for name in args.contenders.split(","):
        if name not in builders:
            raise SystemExit(f"unknown contender {name!r}; accepted: {sorted(builders)}")
        torch.manual_seed(args.seed)
        nets[name] = builders[name]()
    opts = {k: torch.optim.Adam(m.parameters(), lr=args.lr) for k, m in nets.items()}
    times = {k: [] for k in nets}
    gen = torch.Generator().manual_seed(args.seed)
    for i, (xb, yb) in enumerate(data.batches(x, y, args.batch_size, shuffle=True, generator=gen)):
        if i >= args.speed_batches + 1:
            break
        for k in (list(nets) if i % 2 else list(nets)[::-1]):  # alternate the order: fair under noise
            t0 = time.perf_counter()
            BPTT().train_batch(nets[k], encoding.direct(xb, 4), yb, opts[k], float(len(yb)))
            if i:  # the first batch warms up
                times[k].append(time.perf_counter() - t0)
    n_batches = -(-len(x) // args.batch_size)
    return {k: {"seconds_per_batch": sum(v) / len(v), "seconds_per_epoch_estimate": sum(v) / len(v) * n_batches,
                "batches": len(v)} for k, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "digits"),
                   help="digits: a quick side-by-side check at small scale")
    p.add_argument("--epochs", type=int, default=None, help="default 2 (side by side), 1 (--defaults)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--backend", default="auto")
    p.add_argument("--only", choices=("snn", "sj"), default=None)
    p.add_argument("--out", default="runs/bench_fashion")
    p.add_argument("--json", default=None)
    p.add_argument("--speed-batches", type=int, default=0,
                   help="only time N training batches of each network, alternating, and estimate s/epoch")
    p.add_argument("--contenders", default="snn,sj",
                   help="with --speed-batches: comma-separated from snn (its --backend), snn-torch (the torch "
                        "reference backend), sj (SpikingJelly)")
    p.add_argument("--defaults", action="store_true",
                   help="train each of --models with each of --methods on TrainConfig's defaults (--lr and "
                        "--batch-size are ignored)")
    p.add_argument("--models", default="mlp,csnn", help="with --defaults: comma-separated presets")
    p.add_argument("--methods", default="bptt", help="with --defaults: comma-separated training methods")
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.defaults else 2
    if args.defaults:
        rows = defaults(args)
        for r in rows:
            warn = f", {len(r['activity_warnings'])} firing warnings" if r["activity_warnings"] else ""
            print(f"{r['model']:>5} {r['method']:>7}: test acc {r['test_acc']:.4f} after {r['epochs']} epoch(s), "
                  f"{r['train_seconds']:.1f} s of training (lr {r['lr']:g}, batch {r['batch_size']}){warn}")
        return
    if args.speed_batches:
        res = speed(args)
        print(json.dumps(res, indent=1))
        if args.json:
            atomic_write_json(args.json, {"config": vars(args), "speed": res})
        return
    results = {"machine": machine(args), "config": vars(args), "runs": []}
    for side in ([args.only] if args.only else ["snn", "sj"]):
        results["runs"].append(run(side, args))
        if args.json:
            atomic_write_json(args.json, results)
    for r in results["runs"]:
        print(f"{r['side']:>4}: test acc {r['test_acc']:.4f} (best {r['best_test_acc']:.4f}) after {r['epochs']} "
              f"epochs, {r['seconds_per_epoch']:.1f} s/epoch, backend {r['backend']}")
    print(json.dumps({r["side"]: round(r["test_acc"], 4) for r in results["runs"]}))


if __name__ == "__main__":
    main()
