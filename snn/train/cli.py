"""``snn train`` and ``snn demo``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_json_option
from ..io import atomic_write_json
from ..models import MODELS, NEURONS, NORMS
from .config import ENCODINGS, METHODS, OPTIMIZERS, TrainConfig

__all__ = ["register", "train_command", "demo_command", "DEMO_CONFIG"]

# The demo: a small csnn on the embedded 8x8 digits; about half a minute on 2 CPU cores.
DEMO_CONFIG = dict(dataset="digits", model="csnn", channels=[16, 32], neuron="lif", method="bptt", T=6,
                   epochs=8, batch_size=32, lr=3e-3, seed=0)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="auto", choices=("fashion-mnist", "digits", "auto"),
                   help="auto: Fashion-MNIST when its files are found, else the embedded digits")
    p.add_argument("--model", default="csnn", choices=MODELS)
    p.add_argument("--neuron", default="lif", choices=NEURONS)
    p.add_argument("--method", default="bptt", choices=METHODS,
                   help="bptt: surrogate gradients through time; dsr: differentiation on spike representation "
                        "(lif/if); ottt: online training through time")
    p.add_argument("--ottt-mode", default="A", choices=("A", "O"), help="OTTT_A: one update per batch; "
                   "OTTT_O: an update every time step")
    p.add_argument("--T", type=int, default=4, help="time steps")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128, help="per process (global = this x processes)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--backend", default="auto", help="neuron kernels: auto|torch|cpp|cuda|triton")
    p.add_argument("--encoding", default="direct", choices=ENCODINGS)
    p.add_argument("--tau", type=float, default=2.0)
    p.add_argument("--channels", type=_int_list, default=None, help="csnn conv channels, e.g. 32,64")
    p.add_argument("--hidden", type=_int_list, default=None, help="mlp hidden widths, e.g. 256")
    p.add_argument("--norm", default=None, choices=NORMS, help="csnn: bn (default), ws (OTTT's default), none")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test samples")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def _config(args) -> TrainConfig:
    return TrainConfig(dataset=args.dataset, model=args.model, neuron=args.neuron, method=args.method,
                       ottt_mode=args.ottt_mode, T=args.T, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                       data_dir=args.data_dir, out=args.out, backend=args.backend, encoding=args.encoding,
                       tau=args.tau, channels=args.channels, hidden=args.hidden, norm=args.norm,
                       train_limit=args.train_limit, test_limit=args.test_limit, threads=args.threads,
                       progress=False if args.no_progress else None)


def train_command(args) -> dict:
    from .trainer import Trainer

    from . import distributed

    with distributed.leaving_group_at_end():  # under torchrun the trainer joins the process group
        trainer = Trainer(_config(args), resume=args.resume)
        summary = trainer.fit()
    return summary if trainer.ctx.is_main else None  # only rank 0 prints and writes --json


def demo_command(args) -> dict:
    """Train the demo network, then plot a raster of its hidden spikes and its training curves."""
    import torch

    from .. import viz
    from ..functional import reset
    from ..models import spiking_layers
    from .trainer import Trainer

    out = Path(args.out)
    cfg = TrainConfig(**DEMO_CONFIG, out=str(out), threads=args.threads, progress=False if args.no_progress else None)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    trainer = Trainer(cfg)
    summary = trainer.fit()

    model = trainer.model.eval()
    spiking = list(spiking_layers(model).items())
    name, layer = spiking[-1]
    captured = {}
    handle = layer.register_forward_hook(lambda m, a, o: captured.setdefault("s", o.detach()))
    with torch.no_grad():
        reset(model)
        model(trainer.encode(trainer.test_x[:1]))
        reset(model)
    handle.remove()
    s = captured["s"][:, 0].reshape(cfg.T, -1)[:, :128]
    raster = viz.raster(s, out / "raster.png", title=f"layer {name}: spikes of 128 neurons for one test digit")
    curves = viz.curves({k: trainer.history[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")},
                        out / "curves.png", title="snn demo: csnn on digits")
    summary = {k: v for k, v in summary.items() if k != "history"}
    summary.update(raster_png=str(raster), curves_png=str(curves))
    atomic_write_json(out / "summary.json", summary)
    print(f"snn demo: test accuracy {summary['test_acc']:.4f} after {summary['epochs']} epochs "
          f"({summary['train_seconds']:.1f} s of training)")
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a spiking network (BPTT, DSR or OTTT)",
                              description="Train an mlp or csnn preset; checkpoints every epoch into --out.")
    _add_train_options(p)
    p.add_argument("--out", default="runs/train", help="output directory (checkpoint.pt, history.json)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt exactly")
    add_json_option(p)
    p.set_defaults(func=train_command)

    d = subparsers.add_parser("demo", help="train a small network on the embedded digits and plot it",
                              description="Trains a small csnn on scikit-learn's digits (about 30-60 s on 2 CPU "
                                          "cores), prints the test accuracy, writes raster.png, curves.png and "
                                          "summary.json into --out.")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--epochs", type=int, default=None, help=f"default {DEMO_CONFIG['epochs']}")
    d.add_argument("--threads", type=int, default=None)
    d.add_argument("--no-progress", action="store_true")
    add_json_option(d)
    d.set_defaults(func=demo_command)
