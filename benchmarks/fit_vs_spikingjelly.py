"""snn.train.fit against a SpikingJelly 2.0 training loop: same model, data, batches, T, seed and initial weights,
in one run; test accuracy and wall time per training epoch of each side.

    .venv/bin/python benchmarks/fit_vs_spikingjelly.py --epochs 3 --train-limit 2000 --test-limit 500 \\
        --json benchmarks/results/fit_vs_spikingjelly.json

Data sets (offline stand-ins from :mod:`snn.data`):

- ``event-fmnist``: Fashion-MNIST through a simulated DVS, frames ``[T, 2, 34, 34]``; a csnn-like network
  ([Conv3x3 → BatchNorm → LIF → MaxPool2] x 2 → Linear; snn's ``csnn`` preset).
- ``spoken-digits``: espeak-ng digits through a cochlea, spike counts ``[T, 32]``; a spiking MLP
  (Linear → LIF → Linear; snn's ``mlp`` preset).

The snn side is ``fit(model, DataLoader(train, shuffle=True), DataLoader(test))`` (BPTT, Adam, LIF tau 2 with
the ATan surrogate and a detached reset on snn's fastest CPU backend). The SpikingJelly side is the loop of its
tutorials (``net(x).mean(0)``, cross-entropy, Adam, ``functional.reset_net``) over SpikingJelly's
``layer``/``neuron.LIFNode`` modules with the same settings, starting from a copy of the snn model's initial
weights and fed exactly the batches fit draws (the same seeded order, read from the same in-memory tensors), so
the two runs differ only in the training stack. Each SpikingJelly epoch runs right after the snn epoch of the
same number (a fit callback), so a busy machine slows both alike; the ratio of median epoch times is reported.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from snn import data, encoding, models
from snn.io import atomic_write_json
from snn.train import fit
from snn.train.batches import epoch_seed


def spikingjelly_csnn(in_channels=1, channels=(32, 64), num_classes=10, tau=2.0, size=28):
    """The csnn preset from SpikingJelly 2.0's modules: same layers, same LIF (ATan, detach_reset, hard reset);
    multi-step, input ``[T, B, C, H, W]``."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    c1, c2 = channels
    net = nn.Sequential(
        layer.Conv2d(in_channels, c1, 3, padding=1, bias=False), layer.BatchNorm2d(c1),
        neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True), layer.MaxPool2d(2, 2),
        layer.Conv2d(c1, c2, 3, padding=1, bias=False), layer.BatchNorm2d(c2),
        neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True), layer.MaxPool2d(2, 2),
        layer.Flatten(), layer.Linear(c2 * (size // 4) ** 2, num_classes))
    functional.set_step_mode(net, "m")
    return net


def spikingjelly_mlp(features, hidden=128, num_classes=10, tau=2.0):
    """The mlp preset from SpikingJelly 2.0's modules; input ``[T, B, features]``."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    net = nn.Sequential(layer.Flatten(), layer.Linear(features, hidden),
                        neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True),
                        layer.Linear(hidden, num_classes))
    functional.set_step_mode(net, "m")
    return net


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Load ``source``'s parameters and buffers into ``target`` in order (the same architecture, other names)."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    if [tuple(v.shape) for v in src] != [tuple(v.shape) for v in dst.values()]:
        raise ValueError("the two networks differ in their parameters and buffers")
    target.load_state_dict(dict(zip(dst, (v.clone() for v in src))))


def batch(ds, idx, T: int | None = None):
    """Samples ``idx`` of an in-memory data set, time-major ``[T, B, ...]`` as fit reads them (static images
    repeated over ``T`` steps: direct encoding)."""
    if ds.sequence:
        return ds.x[:, idx].to(torch.float32), ds.targets[idx]
    return encoding.direct(ds.x[idx].to(torch.float32), T), ds.targets[idx]


def sj_train_epoch(net, opt, ds, batch_size: int, seed: int, epoch: int, T: int | None = None) -> float:
    """One epoch of SpikingJelly's tutorial loop over fit's batches of ``epoch``; returns its seconds."""
    from spikingjelly.activation_based import functional

    net.train()
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    t0 = time.perf_counter()
    for idx in order.split(batch_size):
        x, y = batch(ds, idx, T)
        loss = F.cross_entropy(net(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        functional.reset_net(net)
    return time.perf_counter() - t0


@torch.no_grad()
def sj_accuracy(net, ds, batch_size: int = 256, T: int | None = None) -> float:
    from spikingjelly.activation_based import functional

    net.eval()
    correct = 0
    for idx in torch.arange(len(ds)).split(batch_size):
        x, y = batch(ds, idx, T)
        correct += int((net(x).mean(0).argmax(1) == y).sum())
        functional.reset_net(net)
    return correct / len(ds)


class SpikingJellyAlongside:
    """A fit callback: after every snn epoch, one SpikingJelly epoch on the same batches, then its accuracy."""

    def __init__(self, net, train, test, batch_size, lr, seed):
        self.net, self.train, self.test, self.batch_size, self.seed = net, train, test, batch_size, seed
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.seconds, self.acc = [], []

    def on_epoch_end(self, run):
        self.seconds.append(sj_train_epoch(self.net, self.opt, self.train, self.batch_size, self.seed, run.epoch - 1))
        self.acc.append(sj_accuracy(self.net, self.test))


def networks(name: str, ds, channels):
    if name == "event-fmnist":
        c, h, w = ds.input_shape
        snn_net = models.get("csnn", num_classes=ds.num_classes, in_channels=c, in_shape=[c, h, w],
                             channels=list(channels))
        return snn_net, spikingjelly_csnn(c, channels, ds.num_classes, size=h)
    (features,) = ds.input_shape
    snn_net = models.get("mlp", num_classes=ds.num_classes, in_channels=1, in_shape=[1, features], hidden=[128])
    return snn_net, spikingjelly_mlp(features, 128, ds.num_classes)


def compare(name: str, args) -> dict:
    options = {"n_frames": args.frames} if name == "event-fmnist" else {}
    t0 = time.perf_counter()
    train = data.get_dataset(name, split="train", n=args.train_limit, seed=args.seed, **options)
    test = data.get_dataset(name, split="test", n=args.test_limit, seed=args.seed, **options)
    print(f"[{name}] {len(train)} train / {len(test)} test samples {list(train.input_shape)} x T={train[0][0].shape[0]}"
          f" ({time.perf_counter() - t0:.0f} s to build)", flush=True)
    torch.manual_seed(args.seed)
    snn_net, sj_net = networks(name, train, args.channels)
    copy_weights(snn_net, sj_net)
    sj = SpikingJellyAlongside(sj_net, train, test, args.batch_size, args.lr, args.seed)
    r = fit(snn_net, DataLoader(train, batch_size=args.batch_size, shuffle=True), DataLoader(test, batch_size=256),
            epochs=args.epochs, lr=args.lr, seed=args.seed, callbacks=[sj], progress=False,
            log=lambda line: print(f"[{name} snn] {line}", flush=True))
    row = {"dataset": name, "T": r["T"], "train_samples": len(train), "test_samples": len(test),
           "snn": {"test_acc": r["history"]["val_acc"], "epoch_seconds": r["history"]["epoch_seconds"],
                   "backend": r["backend"]},
           "spikingjelly": {"test_acc": sj.acc, "epoch_seconds": sj.seconds}}
    row["ratio_sj_over_snn"] = statistics.median(sj.seconds) / statistics.median(r["history"]["epoch_seconds"])
    print(f"[{name}] test acc snn {r['val_acc']:.4f} vs SpikingJelly {sj.acc[-1]:.4f}; s/epoch (median) snn "
          f"{statistics.median(r['history']['epoch_seconds']):.2f} vs SpikingJelly {statistics.median(sj.seconds):.2f}"
          f" -> {row['ratio_sj_over_snn']:.2f}x", flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="event-fmnist,spoken-digits")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=2000, help="random training subset (spoken-digits: all 720)")
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--frames", type=int, default=10, help="event-fmnist frames (T); must divide 30")
    p.add_argument("--channels", type=lambda s: [int(c) for c in s.split(",")], default=[16, 32])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                       "torch": torch.__version__}, "config": vars(args), "runs": []}
    for name in args.datasets.split(","):
        res["runs"].append(compare(name, args))
        if args.json:
            atomic_write_json(args.json, res)
    print("\ndataset        T  acc snn  acc SJ   s/epoch snn  s/epoch SJ  SJ/snn")
    for r in res["runs"]:
        s, j = r["snn"], r["spikingjelly"]
        print(f"{r['dataset']:13} {r['T']:2}  {s['test_acc'][-1]:.4f}   {j['test_acc'][-1]:.4f}   "
              f"{statistics.median(s['epoch_seconds']):10.2f}  {statistics.median(j['epoch_seconds']):10.2f}  "
              f"{r['ratio_sj_over_snn']:5.2f}x")


if __name__ == "__main__":
    main()
